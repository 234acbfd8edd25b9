"""The public headers (include/rill/*.h) stand alone: each compiles as the only include of a tiny
translation unit, as C (gcc) and as C++ (g++), with -Wall -Wextra -Werror -pedantic and nothing
on the include path but include/. In C++ every function a header declares keeps its C name
(the extern "C" guards), and the C++ program links against librill.so."""
import glob
import os
import re
import subprocess

import pytest

SOURCE = os.environ.get("RILL_SOURCE") or os.path.join(os.path.dirname(__file__), "..", "..")
BUILD = os.environ.get("RILL_BUILD") or os.path.join(SOURCE, "build")
INCLUDE = os.path.join(SOURCE, "include")
HEADERS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(INCLUDE, "rill", "*.h")))
WARN = ["-Wall", "-Wextra", "-Werror", "-pedantic"]


def declared_functions(header):
    """Names of the functions a header declares (RILL_API ... name(...);)."""
    text = open(os.path.join(INCLUDE, "rill", header)).read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"^\s*#.*$", " ", text, flags=re.M)  # the RILL_API definition itself
    return re.findall(r"\bRILL_API\b[^;{(]*?\b([A-Za-z_]\w*)\s*\(", text)


def compile_tu(tmp_path, lang, body, extra=()):
    ext, cc, std = ("c", "gcc", "-std=c11") if lang == "c" else ("cpp", "g++", "-std=c++11")
    src = tmp_path / f"tu.{ext}"
    src.write_text(body)
    obj = tmp_path / f"tu.{ext}.o"
    r = subprocess.run([cc, std, *WARN, "-I", INCLUDE, "-c", str(src), "-o", str(obj), *extra],
                       capture_output=True, text=True)
    assert r.returncode == 0, f"{cc} {std} failed on:\n{body}\n{r.stderr}"
    return obj


def test_every_header_is_checked():
    assert "common.h" in HEADERS and "server.h" in HEADERS and len(HEADERS) >= 9


@pytest.mark.parametrize("header", HEADERS)
@pytest.mark.parametrize("lang", ["c", "c++"])
def test_header_compiles_alone(tmp_path, header, lang):
    compile_tu(tmp_path, lang, f'#include "rill/{header}"\n')


def test_function_scan_finds_declarations():
    # the check below is only as good as this scan
    assert "rill_strerror" in declared_functions("common.h")
    assert "rill_io_conn_write" in declared_functions("io.h")
    assert "rill_tls_server_new" in declared_functions("tls.h")
    assert len(declared_functions("h2.h")) > 20


@pytest.mark.parametrize("header", HEADERS)
def test_cplusplus_sees_c_linkage(tmp_path, header):
    """A C++ program taking the address of every declared function must refer to the unmangled
    C symbols (no _Z... names), and those resolve in librill.so."""
    names = declared_functions(header)
    assert names, f"no RILL_API function found in {header}"
    refs = ",\n".join(f"    reinterpret_cast<void (*)()>(&{n})" for n in names)
    body = (f'#include "rill/{header}"\n'
            f"void (*used[])() = {{\n{refs}\n}};\n"
            "int main() { return used[0] == nullptr; }\n")
    obj = compile_tu(tmp_path, "c++", body)
    nm = subprocess.run(["nm", "-u", str(obj)], capture_output=True, text=True, check=True).stdout
    undefined = {line.split()[-1] for line in nm.splitlines() if line.strip()}
    mangled = sorted(s for s in undefined if s.startswith("_Z") and "rill" in s)
    assert not mangled, f"{header}: C++ sees these with C++ linkage (extern \"C\" missing?): {mangled}"
    missing = sorted(set(names) - undefined)
    assert not missing, f"{header}: not referenced as C symbols: {missing}"

    exe = tmp_path / "tu"
    r = subprocess.run(["g++", str(obj), "-o", str(exe), f"-L{BUILD}", "-lrill",
                        f"-Wl,-rpath,{BUILD}"], capture_output=True, text=True)
    assert r.returncode == 0, f"{header}: declared functions missing from librill.so:\n{r.stderr}"
