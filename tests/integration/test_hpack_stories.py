"""HPACK against the hpack-test-case stories: `rill hpack inflate` decodes every encoder's stories,
`rill hpack deflate` output decodes with our decoder and with python-hpack, and our encoding of the
raw stories is no larger in total than nghttp2's."""
import glob
import json
import os

import pytest

from conftest import SHARED, run_rill

CASES = os.path.join(SHARED, "hpack-test-case")
RAW = sorted(glob.glob(os.path.join(CASES, "raw-data", "*.json")))
ENCODED_DIRS = sorted(d for d in glob.glob(os.path.join(CASES, "*"))
                      if os.path.isdir(d) and os.path.basename(d) != "raw-data")

pytestmark = pytest.mark.skipif(not RAW, reason="hpack-test-case not found under RILL_SHARED")


@pytest.fixture(scope="module")
def deflated(tmp_path_factory):
    """Every raw story encoded by `rill hpack deflate`: {name: (path, story)}."""
    out = tmp_path_factory.mktemp("deflated")
    stories = {}
    for raw in RAW:
        r = run_rill("hpack", "deflate", raw, timeout=60)
        assert r.returncode == 0, r.stderr.decode()
        path = out / os.path.basename(raw)
        path.write_bytes(r.stdout)
        stories[os.path.basename(raw)] = (str(path), json.loads(r.stdout))
    return stories


def wire_total(stories):
    return sum(len(c["wire"]) // 2 for s in stories for c in s["cases"])


@pytest.mark.parametrize("folder", ENCODED_DIRS, ids=[os.path.basename(d) for d in ENCODED_DIRS])
def test_inflate_every_story_of_every_encoder(folder):
    stories = sorted(glob.glob(os.path.join(folder, "*.json")))
    assert stories
    r = run_rill("hpack", "inflate", *stories, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert f"inflate: {len(stories)} stories".encode() in r.stdout


def test_deflate_output_is_a_story_with_the_raw_headers(deflated):
    for raw in RAW:
        want = json.load(open(raw))["cases"]
        _, story = deflated[os.path.basename(raw)]
        cases = story["cases"]
        assert len(cases) == len(want)
        assert cases[0]["header_table_size"] == 4096
        for i, (got, exp) in enumerate(zip(cases, want)):
            assert got["seqno"] == i
            assert got["headers"] == exp["headers"]
            bytes.fromhex(got["wire"])


def test_deflate_round_trips_through_rill_inflate(deflated):
    paths = [p for p, _ in deflated.values()]
    r = run_rill("hpack", "inflate", *paths, timeout=120)
    assert r.returncode == 0, r.stderr.decode()


def test_deflate_decodes_with_python_hpack(deflated):
    hpack = pytest.importorskip("hpack")
    for name, (_, story) in sorted(deflated.items()):
        dec = hpack.Decoder(max_header_list_size=1 << 24)
        for case in story["cases"]:
            size = case.get("header_table_size")
            if size is not None:
                dec.max_allowed_table_size = size
                dec.header_table_size = size
            got = dec.decode(bytes.fromhex(case["wire"]), raw=True)
            want = [(k.encode(), v.encode()) for h in case["headers"] for k, v in h.items()]
            assert [(bytes(n), bytes(v)) for n, v in got] == want, f"{name} seqno {case['seqno']}"


def test_compression_is_no_worse_than_nghttp2(deflated):
    ngh = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(CASES, "nghttp2", "*.json")))]
    ours = [s for _, s in deflated.values()]
    assert len(ngh) == len(ours) == len(RAW)
    assert wire_total(ours) <= wire_total(ngh), (wire_total(ours), wire_total(ngh))


def test_inflate_reports_the_first_mismatch(tmp_path):
    story = json.load(open(os.path.join(CASES, "nghttp2", "story_00.json")))
    story["cases"][1]["headers"][0] = {":method": "POST"}
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(story))
    r = run_rill("hpack", "inflate", str(path))
    assert r.returncode == 1
    assert b"broken.json seqno 1" in r.stderr


def test_inflate_reports_bad_wire(tmp_path):
    story = {"cases": [{"seqno": 0, "wire": "80", "headers": []}]}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(story))
    r = run_rill("hpack", "inflate", str(path))
    assert r.returncode == 1
    assert b"bad.json seqno 0" in r.stderr


def test_inflate_table_size_absent_null_or_set(tmp_path):
    # Case 1 lowers the table size to 0: its block must start with the size update (0x20).
    story = {"cases": [
        {"seqno": 0, "header_table_size": None, "wire": "400161016282",
         "headers": [{"a": "b"}, {":method": "GET"}]},
        {"seqno": 1, "wire": "be", "headers": [{"a": "b"}]},
        {"seqno": 2, "header_table_size": 0, "wire": "2082", "headers": [{":method": "GET"}]},
    ]}
    path = tmp_path / "sizes.json"
    path.write_text(json.dumps(story))
    r = run_rill("hpack", "inflate", str(path))
    assert r.returncode == 0, r.stderr.decode()
    story["cases"][2]["wire"] = "82"
    path.write_text(json.dumps(story))
    assert run_rill("hpack", "inflate", str(path)).returncode == 1


def test_deflate_table_size_option(tmp_path):
    r = run_rill("hpack", "deflate", "--table-size", "256", RAW[0])
    assert r.returncode == 0
    story = json.loads(r.stdout)
    assert story["cases"][0]["header_table_size"] == 256
    assert story["cases"][0]["wire"].startswith("3fe101")  # announces 256 to a 4096 decoder
    path = tmp_path / "small.json"
    path.write_bytes(r.stdout)
    assert run_rill("hpack", "inflate", str(path)).returncode == 0


def test_usage_errors():
    assert run_rill("hpack").returncode == 2
    assert run_rill("hpack", "frobnicate").returncode == 2
    assert run_rill("hpack", "inflate").returncode == 2
    assert run_rill("hpack", "inflate", "--bogus", RAW[0]).returncode == 2
    assert run_rill("hpack", "deflate", "--bogus", RAW[0]).returncode == 2
    assert run_rill("hpack", "deflate", "--table-size", "x", RAW[0]).returncode == 2
    r = run_rill("hpack", "--help")
    assert r.returncode == 0 and b"inflate" in r.stdout


def test_missing_file_exits_1():
    r = run_rill("hpack", "inflate", "/nonexistent/story.json")
    assert r.returncode == 1 and b"cannot read" in r.stderr
    r = run_rill("hpack", "deflate", "/nonexistent/story.json")
    assert r.returncode == 1 and b"cannot read" in r.stderr


@pytest.mark.parametrize("flags", [["--index-all"], ["--no-huffman"], ["--table-size", "0"]])
def test_deflate_variants_decode_with_python_hpack(flags):
    hpack = pytest.importorskip("hpack")
    r = run_rill("hpack", "deflate", *flags, RAW[1])
    assert r.returncode == 0, r.stderr.decode()
    story = json.loads(r.stdout)
    dec = hpack.Decoder(max_header_list_size=1 << 24)
    size = story["cases"][0]["header_table_size"]
    dec.max_allowed_table_size = size
    dec.header_table_size = size
    for case in story["cases"]:
        got = dec.decode(bytes.fromhex(case["wire"]), raw=True)
        want = [(k.encode(), v.encode()) for h in case["headers"] for k, v in h.items()]
        assert [(bytes(n), bytes(v)) for n, v in got] == want
