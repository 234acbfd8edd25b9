"""rill(1), docs/rill.1, documents exactly what the CLI's help prints: every command of
`rill --help` has a ".SS rill <command>" section holding, as ".TP" entries, every flag that
`rill <command> --help` prints, and no flag the CLI does not know; the global options are under
OPTIONS. The page renders without a groff warning and carries the program's version."""
import os
import re
import subprocess

from conftest import run_rill

SOURCE = os.environ.get("RILL_SOURCE") or os.path.join(os.path.dirname(__file__), "..", "..")
PAGE = os.path.join(SOURCE, "docs", "rill.1")

# A flag: one or two dashes, then a letter, not glued to a word before it ("self-signed").
FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][A-Za-z0-9.-]*)")


def flags_in(text):
    return {f.rstrip(".-") for f in FLAG.findall(text)}


def help_text(*args):
    r = run_rill(*args)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def cli():
    """{"": global flags, command: its flags} from the help output."""
    main = help_text("--help")
    commands = re.search(r"^Commands:\n(.*?)\n\n", main, re.S | re.M).group(1)
    names = [line.split()[0] for line in commands.splitlines() if line.strip()]
    options = re.search(r"^Options:\n(.*?)(\n\n|\Z)", main, re.S | re.M).group(1)
    out = {"": flags_in(options)}
    for name in names:
        out[name] = flags_in(help_text(name, "--help"))
    return out


def plain(roff):
    """A roff line as text: macro name, font changes, quotes and escapes removed."""
    line = re.sub(r"^\.\w+\s*", "", roff)
    line = re.sub(r"\\f(\(..|\[[^]]*\]|.)", "", line)
    return line.replace("\\-", "-").replace("\\&", "").replace('"', "")


def manpage():
    """{"": flags of OPTIONS, command: flags of its .SS section}, from the .TP tags."""
    lines = open(PAGE).read().splitlines()
    out, where = {}, None
    for i, line in enumerate(lines):
        if line.startswith(".SH"):
            where = "" if plain(line).strip() == "OPTIONS" else None
        elif line.startswith(".SS"):
            m = re.fullmatch(r"rill (\S+)", plain(line).strip())
            where = m.group(1) if m else None
        elif line.startswith(".TP") and where is not None and i + 1 < len(lines):
            out.setdefault(where, set()).update(flags_in(plain(lines[i + 1])))
        if where is not None:
            out.setdefault(where, set())
    return out


def test_parsers_see_known_flags():
    # what the comparison below relies on
    assert {"-h", "--help", "--version"} <= cli()[""]
    assert {"--listen", "--cert", "--key", "--ws-origin"} <= cli()["serve"]
    assert {"-k", "--insecure", "--http1.1"} <= cli()["ws"]
    assert {"--listen", "--cert", "--key"} <= manpage()["serve"]
    assert plain(r".BI \-\-tls\-listen \fIHOST\fR") == r"--tls-listen HOST"


def test_every_command_has_a_section():
    documented = set(manpage()) - {""}
    commands = set(cli()) - {""}
    assert commands - documented == set(), f"commands missing from docs/rill.1: {commands - documented}"
    assert documented - commands == set(), f"docs/rill.1 documents unknown commands: {documented - commands}"


def test_every_flag_is_documented_where_it_belongs():
    page, real = manpage(), cli()
    for cmd, flags in real.items():
        where = f"rill {cmd}" if cmd else "OPTIONS"
        missing = flags - page.get(cmd, set())
        assert not missing, f"{where}: flags printed by --help but missing from docs/rill.1: {sorted(missing)}"
        extra = page.get(cmd, set()) - flags
        assert not extra, f"{where}: docs/rill.1 documents flags --help does not print: {sorted(extra)}"


def test_page_renders_without_warnings():
    r = subprocess.run(["groff", "-man", "-ww", "-z", "-Tutf8", PAGE], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    text = subprocess.run(["groff", "-man", "-Tutf8", "-P", "-cbou", PAGE], capture_output=True,
                          text=True, check=True).stdout
    assert "rill serve" in text and "--max-concurrent-streams" in text.replace("\u2010", "-")


def test_page_has_the_program_version():
    version = help_text("--version").split()[-1]
    th = next(line for line in open(PAGE) if line.startswith(".TH"))
    assert f'"rill {version}"' in th, f"docs/rill.1 .TH line says {th.strip()!r}, rill is {version}"
