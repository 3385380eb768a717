"""Shell completion: the code `corsflow completion SHELL` prints, run by the real shells."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT, need

BIN = Path(sys.executable).parent


def _env() -> dict[str, str]:
    # The shells run the installed `corsflow` command, as a user's shell would.
    if not (BIN / "corsflow").exists():
        need("the corsflow command", "install the package (make install)")
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def _run(cmd: list[str]) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=_env(),
                          cwd=REPO_ROOT, check=True)
    return done.stdout


def test_bash_completes_commands_and_options() -> None:
    script = ('eval "$(corsflow completion bash)"; '
              'COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}; read -r -a COMP_WORDS <<< "$1"; '
              'COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); '
              '_python_argcomplete corsflow "${COMP_WORDS[-1]}" corsflow; '
              'printf "%s\\n" "${COMPREPLY[@]}"')
    bash = shutil.which("bash") or need("bash", "apt-get install bash")
    assert _run([str(bash), "-c", script, "bash", "corsflow ana"]).split() == ["analyze"]
    options = _run([str(bash), "-c", script, "bash", "corsflow analyze x.har --for"]).split()
    assert options == ["--format"]


def test_fish_completes_options_with_their_help() -> None:
    fish = shutil.which("fish")
    if fish is None:
        need("fish", "apt-get install fish")
    script = 'corsflow completion fish | source; complete -C "corsflow analyze x.har --eng"'
    out = _run([str(fish), "-c", script])
    name, _, help_text = out.strip().partition("\t")
    assert name == "--engine" and "default: chromium" in help_text


def test_zsh_code_is_valid_zsh() -> None:
    zsh = shutil.which("zsh")
    if zsh is None:
        need("zsh", "apt-get install zsh")
    code = _run([sys.executable, "-m", "corsflow", "completion", "zsh"])
    assert code.startswith("#compdef corsflow")
    subprocess.run([str(zsh), "-n"], input=code, text=True, check=True, timeout=60)


def test_unknown_shell_is_a_usage_error() -> None:
    done = subprocess.run([sys.executable, "-m", "corsflow", "completion", "tcsh"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "invalid choice" in done.stderr
