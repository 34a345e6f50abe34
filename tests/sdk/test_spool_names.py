"""The spool replays only files it wrote itself: a name is matched to its end."""

from steward.spool import Spool


def test_a_record_name_with_a_trailing_newline_is_not_replayed(tmp_path):
    spool = Spool(tmp_path, "http://steward.example")
    written = spool.write("run1", "batch", {"body": {}})
    (written.parent / (written.name + "\n")).write_bytes(written.read_bytes())
    assert spool.records("run1") == [written]
