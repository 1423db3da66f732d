"""Shell completion scripts generated from the argument parser (``orchestrator completion``),
so a new command or flag completes without anyone editing a script.

Bash: ``eval "$(orchestrator completion bash)"`` in ~/.bashrc; zsh: ``eval "$(orchestrator
completion zsh)"`` in ~/.zshrc after ``compinit``, which runs the same function through zsh's
``bashcompinit`` layer. Command names, each command's flags and the choices of a
flag (``--format json``) complete; CONFIG and file arguments complete as file names.
"""
from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterator

SHELLS = ("bash", "zsh")
FILE_METAVARS = {"CONFIG", "FILE", "DIR", "CSV"}
PROG = "orchestrator"

BASH_TEMPLATE = """\
# {prog} completion for bash, generated from its argument parser.
_{func}() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}" cmd="" word
    for word in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
        case "$word" in -*) ;; *) cmd="$word"; break ;; esac
    done
    COMPREPLY=()
    case "$cmd" in
        "") COMPREPLY=($(compgen -W {commands} -- "$cur")); return 0 ;;
    esac
    case "$cmd $prev" in
{values}
    esac
    local flags=""
    case "$cmd" in
{flags}
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}}
complete -o filenames -o bashdefault -F _{func} {prog}
"""
ZSH_PREAMBLE = ("# for zsh: the bash function below, through bashcompinit\n"
                "autoload -U +X bashcompinit && bashcompinit\n")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:             # argparse has no public view of its tree
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _value_case(action: argparse.Action) -> str | None:
    """What follows this flag: its choices, a file name, or nothing we can guess (None)."""
    if action.nargs == 0:
        return None
    if action.choices:
        words = " ".join(str(c) for c in action.choices)
        return f'COMPREPLY=($(compgen -W {shlex.quote(words)} -- "$cur"))'
    if action.metavar in FILE_METAVARS or action.type is not None and \
            getattr(action.type, "__name__", "") in ("Path", "PosixPath"):
        return 'COMPREPLY=($(compgen -f -- "$cur"))'
    return "COMPREPLY=()"                    # a number or a name: offer nothing


def _cases(commands: dict[str, argparse.ArgumentParser]) -> Iterator[tuple[str, str, str]]:
    """(command, flag string, bash case body for the words after each value-taking flag)."""
    for name, sub in commands.items():
        flags = [opt for action in sub._actions for opt in action.option_strings]
        values = []
        for action in sub._actions:
            body = _value_case(action) if action.option_strings else None
            if body is not None:
                pattern = "|".join(f'"{name} {opt}"' for opt in action.option_strings)
                values.append(f"        {pattern}) {body}; return 0 ;;")
        yield name, " ".join(flags), "\n".join(values)


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    commands = _subcommands(parser)
    top_flags = [opt for action in parser._actions if not isinstance(
        action, argparse._SubParsersAction) for opt in action.option_strings]
    cases = list(_cases(commands))
    bash = BASH_TEMPLATE.format(
        prog=PROG, func=PROG.replace("-", "_"),
        commands=shlex.quote(" ".join([*commands, *top_flags])),
        values="\n".join(v for _, _, v in cases if v),
        flags="\n".join(f"        {name}) flags={shlex.quote(f)} ;;" for name, f, _ in cases))
    return (ZSH_PREAMBLE.format(prog=PROG) + bash) if shell == "zsh" else bash


def completion_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("shell", choices=SHELLS, help="the shell to write a completion script for")
