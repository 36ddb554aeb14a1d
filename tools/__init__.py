"""What the agent does, as plain typed functions: look parameters up (`lookup.resolve`), measure a
missing combination (`search.live_search`), write the script (`render.render`) and run it
(`validate.validate`).

They are plain functions, not tools a model chooses among: the model's one job is to turn free text
into a `Task` (agent/extract.py); everything after that is policy that must give the same answer for
the same task whichever way it was asked (a chat edit or a fresh request), so `agent.agent.Agent`
calls them in one fixed, bounded order.
"""
