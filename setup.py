"""Ship the repo-root database and prompts inside the installed packages.

The layout keeps `search_params.json` and `prompts/` at the repository root, where people look for
them; an installed (non-editable) copy has no repository root, so the build copies them in.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent


class BuildPyWithData(build_py):
    def run(self):
        super().run()
        build = Path(self.build_lib)
        shutil.copyfile(ROOT / "search_params.json", build / "search" / "search_params.json")
        prompts = build / "agent" / "prompts"
        prompts.mkdir(parents=True, exist_ok=True)
        for template in (ROOT / "prompts").glob("*.j2"):
            shutil.copyfile(template, prompts / template.name)


setup(cmdclass={"build_py": BuildPyWithData})
