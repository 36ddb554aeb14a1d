"""Regenerate the example scripts from the shipped database: `python examples/regenerate.py`.

tests/test_codegen.py checks that the files here match what this produces, so the examples never
drift from the templates or the database.
"""

from pathlib import Path

EXAMPLES = {
    "sdxl_unipc_2x.py": "make SDXL 2x faster with UniPC",
    "sd15_ddim_50steps_deepcache_3x.py": "SD1.5, DDIM, 50 steps, DeepCache, 3x speedup",
    "sd21_dpmpp_25steps_deepcache_tgate_2x.py": "SD2.1 with DPM-Solver++ 25 steps, DeepCache and T-Gate, 2x",
    "sdxl_ddim_25steps_all_three_2_5x.py": "SDXL DDIM 25 steps accelerated by DeepCache, T-Gate, and ToMe with 2.5x speedup",
    "sd15_unipc_20steps_tome_1_2x.py": "SD1.5 UniPC 20 steps ToMe 1.2x",
}
HERE = Path(__file__).parent


def render_examples(db_path=None) -> dict[str, str]:
    from agent.agent import Agent
    from agent.parser import parse

    agent = Agent(db_path=db_path, live_search="never")
    return {name: agent.run(parse(request), filename=name).source for name, request in EXAMPLES.items()}


if __name__ == "__main__":
    for name, source in render_examples().items():
        (HERE / name).write_text(source, encoding="utf-8")
        print(f"wrote examples/{name}")
