"""The shared nouns everything else stands on: the task (`task`), user-facing errors (`errors`),
the accelerator knobs (`settings`), the parameter database's types and format (`db`), the pick per
target (`pareto`), and safe file writes (`files`). Imports nothing from agent/, search/ or tools/.
"""
