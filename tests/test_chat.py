import json
import re

from click.testing import CliRunner

from agent.chat import ChatSession
from agent.cli import cli
from core.task import Task

SESSION = "\n".join([
    "make SDXL 2x faster with UniPC",
    "now 3x",
    "use DDIM instead",
    "add ToMe",
    "drop ToMe",
    "20 steps",
    "why these parameters?",
    "/save {out}/kept.py",
    "/reset",
    "/save",
    "/quit",
]) + "\n"


def chat(tmp_path, text, *args):
    return CliRunner().invoke(cli, ["chat", "--no-validate", "--out", str(tmp_path), *args], input=text)


def headers(output):
    return re.findall(r'"""(SD\S+ with .+?)\.\s', output)


def test_follow_ups_edit_the_current_task(tmp_path):
    result = chat(tmp_path, SESSION.format(out=tmp_path))
    assert result.exit_code == 0, result.output
    assert headers(result.output) == [
        "SDXL with UniPC (25 steps), accelerated by DeepCache",
        "SDXL with UniPC (25 steps), accelerated by DeepCache",
        "SDXL with DDIM (25 steps), accelerated by DeepCache",
        "SDXL with DDIM (25 steps), accelerated by DeepCache + ToMe",
        "SDXL with DDIM (25 steps), accelerated by DeepCache",
        "SDXL with DDIM (20 steps), accelerated by DeepCache",
    ]
    assert "Target: 3x faster" in result.output
    assert "Pareto front of the sweep" in result.output and "lower bound reaches 3x" in " ".join(result.output.split())
    assert (tmp_path / "kept.py").read_text().startswith('"""SDXL with DDIM (20 steps)')
    assert list(tmp_path.glob("sdxl_ddim_20steps_deepcache_*.py"))  # every version is saved
    assert "Task cleared" in result.output and "No task yet" in result.output
    assert result.output.rstrip().endswith("bye")


def test_eof_and_errors_end_cleanly(tmp_path):
    result = chat(tmp_path, "make FLUX 2x faster\nhello there\n")
    assert result.exit_code == 0
    assert "supported models: SD1.5, SD2.1, SDXL" in result.output
    assert "does not look like" in result.output
    assert "Traceback" not in result.output and result.output.rstrip().endswith("bye")


def test_edit_rules():
    current = Task(model="SD1.5", sampler="DDIM", steps=50, accelerators=["DeepCache", "ToMe"], speedup=2.0)
    assert ChatSession.edit(current, Task(), "drop ToMe").accelerators == ["DeepCache"]
    assert ChatSession.edit(current, Task(accelerators=["T-Gate"]), "add T-Gate").accelerators == [
        "DeepCache", "T-Gate", "ToMe"]
    assert ChatSession.edit(current, Task(accelerators=["T-Gate"]), "use T-Gate only").accelerators == ["T-Gate"]
    assert ChatSession.edit(current, Task(accelerators=[]), "no acceleration").accelerators == []
    assert ChatSession.edit(current, Task(speedup=3.0), "now 3x") == current.model_copy(update={"speedup": 3.0})


def test_missing_combination_asks_before_a_live_search(tmp_path):
    # T-Gate+ToMe is outside the grid: the agent asks, the user declines, the script is labelled.
    (tmp_path / "db.json").write_text('{"format": "diffaccel-search-params", "version": 2}')
    result = chat(tmp_path, "SD1.5 DDIM 25 steps T-Gate and ToMe 1.2x\nn\n/quit\n", "--db", str(tmp_path / "db.json"))
    said = " ".join(result.output.split())
    assert "Measure it now with a live search? (y/N)" in said
    assert "UNMEASURED" in said and "agent search --model SD1.5 --sampler DDIM --steps 25" in said


def test_live_search_on_a_miss_measures_and_uses_the_result(tmp_path):
    # Accepting runs the search (tiny pipeline on this CPU), stores it, and the script uses it.
    db_path = tmp_path / "db.json"
    db_path.write_text('{"format": "diffaccel-search-params", "version": 2}')
    result = chat(tmp_path, "SD2.1 UniPC 6 steps T-Gate and ToMe 1.2x\ny\n/quit\n", "--db", str(db_path))
    said = " ".join(result.output.split())
    assert "live search:" in said and "tiny-random weights" in said
    assert "not a speed figure" in said and "UNMEASURED" not in said
    assert json.loads(db_path.read_text())["sweeps"][0]["accelerators"] == ["T-Gate", "ToMe"]


def test_ctrl_c_at_the_prompt_exits_cleanly():
    from rich.console import Console

    class Interrupting(Console):
        def input(self, *args, **kwargs):
            raise KeyboardInterrupt

    console = Interrupting(record=True, width=100)
    ChatSession(console, agent=None).run()
    assert console.export_text().rstrip().endswith("bye")
