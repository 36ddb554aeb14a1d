import json
import re
import time

from click.testing import CliRunner
from rich.console import Console

from agent.agent import Agent
from agent.chat import ChatSession
from agent.cli import cli
from agent.parser import parse
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
    return CliRunner().invoke(cli, ["chat", "--out", str(tmp_path), *args], input=text)


def session(tmp_path, agent=None, **options):
    """A ChatSession on a recording console, answering from the shipped database."""
    console = Console(record=True, width=120)
    return ChatSession(console, agent or Agent(live_search="never"), out_dir=tmp_path, **options), console


def said(console) -> str:
    return " ".join(console.export_text().split())


def combinations(output):
    return re.findall(r"│ accelerators │ (\S+)", output)


def test_follow_ups_edit_the_current_task(tmp_path):
    result = chat(tmp_path, SESSION.format(out=tmp_path))
    assert result.exit_code == 0, result.output
    assert combinations(result.output) == ["DeepCache", "DeepCache", "DeepCache", "DeepCache+ToMe", "DeepCache",
                                           "DeepCache"]
    changed = re.findall(r"changed: (.+)", result.output)
    assert [line.split(";")[0] for line in changed] == [
        "speedup 2x -> 3x", "sampler UniPC -> DDIM", "accelerators DeepCache -> DeepCache+ToMe",
        "accelerators DeepCache+ToMe -> DeepCache", "steps 25 -> 20"]
    assert "Pareto front of the sweep" in result.output and "lower bound reaches 3x" in " ".join(result.output.split())
    assert (tmp_path / "kept.py").read_text().startswith('"""SDXL with DDIM (20 steps)')
    assert "Task cleared" in result.output and "No task yet" in result.output
    assert result.output.rstrip().endswith("bye")


def test_a_turn_answers_without_running_or_printing_the_script(tmp_path, monkeypatch):
    import agent.agent

    ran = []
    monkeypatch.setattr(agent.agent, "validate_script", lambda *args, **kwargs: ran.append(args))
    turns = ["make SDXL 2x faster with UniPC", "now 3x", "use DDIM instead", "add ToMe", "drop ToMe", "20 steps"]
    started = time.perf_counter()
    result = chat(tmp_path, "\n".join(turns) + "\n")
    seconds = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    assert not ran and "Validation" not in result.output  # validation is /validate, or --validate
    assert "import argparse" not in result.output  # the script is shown on /show, not each turn
    assert [path.name for path in tmp_path.iterdir()] == ["chat_pipeline.py"]  # one file, rewritten
    unwrapped = "".join(result.output.split())  # rich folds long paths anywhere
    assert unwrapped.count("savedto" + "".join(str(tmp_path / "chat_pipeline.py").split())) == len(turns)
    assert (tmp_path / "chat_pipeline.py").read_text().startswith('"""SDXL with DDIM (20 steps)')
    turn = result.output.split("you>")[2]  # 'now 3x': task, parameters, what changed, where it is
    assert len(turn.splitlines()) < 30 and "changed: speedup 2x -> 3x" in turn
    assert seconds < len(turns), f"{seconds:.1f} s for {len(turns)} turns"
    print(f"{len(turns)} turns in {seconds:.2f} s")


def test_show_save_each_and_validate_on_request(tmp_path, monkeypatch):
    import agent.agent
    from tools.validate import Validation

    statuses = []

    class Recording(Console):
        def status(self, message, **kwargs):
            statuses.append(message)
            return super().status(message, **kwargs)

    monkeypatch.setattr(agent.agent, "validate_script",
                        lambda *args, **kwargs: Validation(ok=True, kind="tiny-cpu-smoke", seconds=15.0))
    console = Recording(record=True, width=120)
    chat_session = ChatSession(console, Agent(live_search="never"), out_dir=tmp_path, save_each=True)
    for line in ["make SDXL 2x faster with UniPC", "now 3x", "/show", "/validate"]:
        chat_session.command(line) if line.startswith("/") else chat_session.say(line)
    text = said(console)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "sdxl_unipc_25steps_deepcache_2x.py", "sdxl_unipc_25steps_deepcache_3x.py"]
    assert "import argparse" in text  # /show
    assert statuses and "tiny CPU smoke run: shows the script works; not a speed figure" in text


def test_an_edit_gives_what_asking_directly_gives(tmp_path):
    agent = Agent(live_search="never")
    for lines, direct in [
        (["make SD1.5 2x faster", "now 3x"], "make SD1.5 3x faster"),
        (["make SDXL 2x faster with UniPC", "now 3x"], "make SDXL 3x faster with UniPC"),
        (["make SD2.1 1.5x faster", "use DDIM instead", "now 2.5x"], "make SD2.1 2.5x faster with DDIM"),
        (["make SD1.5 2x faster", "20 steps"], "make SD1.5 2x faster in 20 steps"),
        (["make SDXL 2x faster", "without ToMe"], "make SDXL 2x faster without ToMe"),
        (["make SD2.1 3x faster with DDIM", "50 steps", "now 1.5x"], "make SD2.1 1.5x faster with DDIM in 50 steps"),
        (["SD1.5 DDIM 25 steps DeepCache and ToMe 2x", "drop ToMe"], "SD1.5 DDIM 25 steps DeepCache 2x"),
    ]:
        chat_session, _ = session(tmp_path, agent)
        for line in lines:
            chat_session.say(line)
        edited = chat_session.outcome
        assert edited.source == agent.run(parse(direct), filename=edited.filename).source, (lines, direct)


def test_edited_fields_still_show_asked_or_assumed(tmp_path):
    chat_session, console = session(tmp_path)
    chat_session.say("make SD1.5 2x faster")
    chat_session.say("now 3x")
    last_table = console.export_text().split("Task")[-1]
    assert re.search(r"sampler .* default sampler", last_table) and re.search(r"speedup .* 3x .* asked", last_table)
    assert re.search(r"accelerators .* measured best quality", last_table)


def test_add_takes_an_accelerator_back_out_of_excluded(tmp_path):
    chat_session, _ = session(tmp_path)
    chat_session.say("make SD1.5 2x faster without ToMe")
    chat_session.say("add ToMe")
    task = chat_session.outcome.resolution.task
    assert task.excluded is None and "ToMe" in task.accelerators


def test_validate_each_turn_when_asked(tmp_path, monkeypatch):
    import agent.agent
    from tools.validate import Validation

    monkeypatch.setattr(agent.agent, "validate_script",
                        lambda *args, **kwargs: Validation(ok=True, kind="tiny-cpu-smoke", seconds=15.0))
    result = chat(tmp_path, "make SDXL 2x faster with UniPC\nnow 3x\n", "--validate")
    assert " ".join(result.output.split()).count(
        "Validation: the script ran (tiny CPU smoke run: shows the script works; not a speed figure") == 2


def test_say_what_was_not_understood(tmp_path):
    chat_session, console = session(tmp_path)
    chat_session.say("SDXL UniPC 25 steps DeepCache 2x")
    console.export_text()  # clear
    chat_session.say("drop ToMe")
    assert said(console) == "ToMe is not in the task; nothing to drop. The task stays as it is."
    chat_session.say("add DeepCache")
    assert "DeepCache is already in the task. The task stays as it is." in said(console)
    chat_session.say("how fast is it on a 4090?")
    answer = said(console)
    assert "a question, not a change: the task stays SDXL, UniPC, 25 steps, DeepCache, 2x" in answer
    assert "measured on NVIDIA" in answer and "to know a 4090, run this there: agent search --model SDXL" in answer
    chat_session.say("hello there")
    assert "I found no change in that" in said(console)


def test_eof_and_errors_end_cleanly(tmp_path):
    result = chat(tmp_path, "make FLUX 2x faster\nhello there\n")
    assert result.exit_code == 0
    assert "supported models: SD1.5, SD2.1, SDXL" in result.output
    assert "does not look like" in result.output
    assert "Traceback" not in result.output and result.output.rstrip().endswith("bye")


def test_a_path_that_cannot_be_written_is_one_line_and_the_session_goes_on(tmp_path):
    result = chat(tmp_path, "make SD1.5 2x faster\n/save /proc/nonexistent/x.py\nnow 3x\n")
    assert result.exit_code == 0 and "Traceback" not in result.output
    assert "Error: cannot write /proc/nonexistent/x.py" in result.output
    changed = " ".join(result.output.split("changed:")[-1].split())  # the next turn went on (rich folds lines)
    assert "speedup 2x -> 3x" in changed and result.output.rstrip().endswith("bye")


def test_edit_rules():
    current = Task(model="SD1.5", sampler="DDIM", steps=50, accelerators=["DeepCache", "ToMe"], speedup=2.0)
    assumed = current.model_copy(update={"accelerators": None})  # DeepCache+ToMe was the resolver's choice
    assert ChatSession.edit(assumed, Task(), "drop ToMe", shown=current) == assumed.model_copy(
        update={"excluded": ["ToMe"]})  # as asking 'without ToMe': the resolver chooses again
    assert ChatSession.edit(assumed, Task(accelerators=["T-Gate"]), "add T-Gate", shown=current).accelerators == [
        "DeepCache", "T-Gate", "ToMe"]
    assert ChatSession.edit(assumed, Task(speedup=3.0), "now 3x", shown=current) == assumed.model_copy(
        update={"speedup": 3.0})
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
    result = chat(tmp_path, "SD2.1 UniPC 6 steps T-Gate and ToMe 1.2x\ny\nwhy these parameters?\n/quit\n",
                  "--db", str(db_path))
    said = " ".join(result.output.split())
    assert "live search:" in said and "tiny-random weights" in said
    assert "not a speed figure" in said and "UNMEASURED" not in said
    assert re.search(r"Pareto front of the sweep .*, measured on CPU .*; tiny CPU smoke run: shows the setting works; "
                     "not a speed figure:", said)
    assert json.loads(db_path.read_text())["sweeps"][0]["accelerators"] == ["T-Gate", "ToMe"]


def test_ctrl_c_at_the_prompt_exits_cleanly():
    from rich.console import Console

    class Interrupting(Console):
        def input(self, *args, **kwargs):
            raise KeyboardInterrupt

    console = Interrupting(record=True, width=100)
    ChatSession(console, agent=None).run()
    assert console.export_text().rstrip().endswith("bye")


def test_an_error_naming_an_extra_keeps_its_brackets(tmp_path, monkeypatch):
    import agent.agent
    from core.errors import MissingDependency

    def missing(*args, **kwargs):
        raise MissingDependency("this needs torch: pip install 'diffaccel[run]'")

    monkeypatch.setattr(agent.agent, "validate_script", missing)
    result = chat(tmp_path, "make SD1.5 2x faster\n/validate\n")
    assert result.exit_code == 0 and "pip install 'diffaccel[run]'" in result.output  # not read as rich markup
