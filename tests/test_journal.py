"""The request journal (storage/journal.py): real files, real locks."""

from __future__ import annotations

import json
import os
import stat
import threading

import pytest

from storage.journal import JournalBroken, RequestJournal, read_journal


def journal(tmp_path, owner: str = "host:1:aa") -> RequestJournal:  # noqa: ANN001
    return RequestJournal(tmp_path / "j", owner).open()


def payload(i: int) -> str:
    return json.dumps(
        {"text": f"file vendor=V{i} product=P{i} agency=ICE", "note": 'caf\u00e9 "quoted"\nline'},
        ensure_ascii=False,
    )


def test_lines_are_read_back_in_order_until_committed_and_the_file_is_cut_back_when_all_are(tmp_path):
    j = journal(tmp_path)
    for i in range(3):
        j.append(f"k{i}", "command", payload(i))
    entries = read_journal(j.path)
    assert [e["key"] for e in entries] == ["k0", "k1", "k2"]
    assert entries[0]["kind"] == "command" and entries[0]["payload"]["note"] == 'café "quoted"\nline'
    j.committed(["k0", "k1"])
    assert [e["key"] for e in read_journal(j.path)] == ["k2"]
    assert os.path.getsize(j.path) > 0
    j.committed(["k2"])
    assert os.path.getsize(j.path) == 0  # nothing uncommitted: cut back
    j.append("k3", "answer", "{}")
    assert [e["key"] for e in read_journal(j.path)] == ["k3"]
    j.committed(["k3"])
    j.close(remove=True)
    assert not j.path.exists()


def test_only_the_owner_can_read_it(tmp_path):
    j = journal(tmp_path)
    assert stat.S_IMODE(os.stat(j.directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(j.path).st_mode) == 0o600
    j.close(remove=True)


def test_a_live_journal_is_not_taken_a_stopped_one_is_taken_once(tmp_path):
    live = journal(tmp_path, "live")
    other = journal(tmp_path, "other")
    other.append("a1", "command", payload(1))
    other.append("a2", "command", payload(2))
    other.committed(["a1"])
    assert list(live.orphans()) == []  # "other" holds its lock
    other.close(remove=True)  # a line is uncommitted: the file is kept for the next process
    assert other.path.exists()
    [orphan] = list(live.orphans())
    assert orphan.path == other.path and [e["key"] for e in orphan.entries] == ["a2"]
    # while this process holds it, nobody else takes it
    third = journal(tmp_path, "third")
    assert list(third.orphans()) == []
    orphan.release()
    assert not other.path.exists()
    assert list(third.orphans()) == [] and list(live.orphans()) == []
    live.close(remove=True)
    third.close(remove=True)


def test_an_orphan_kept_after_a_failed_copy_is_offered_again(tmp_path):
    dead = journal(tmp_path, "dead")
    dead.append("d1", "command", payload(1))
    dead.close(remove=True)
    live = journal(tmp_path, "live")
    [orphan] = list(live.orphans())
    orphan.keep()
    [again] = list(live.orphans())
    assert [e["key"] for e in again.entries] == ["d1"]
    again.release()
    live.close(remove=True)


def test_a_cut_off_last_line_is_skipped_and_the_rest_read(tmp_path):
    j = journal(tmp_path)
    j.append("k1", "command", payload(1))
    j.close(remove=False)
    with open(j.path, "ab") as f:
        f.write(b'{"key":"k2","kind":"command","payload":{"te')  # a power cut in the middle of a write
    assert [e["key"] for e in read_journal(j.path)] == ["k1"]


def test_lines_of_another_shape_are_ignored(tmp_path):
    path = tmp_path / "x.journal"
    path.write_bytes(
        b'[1,2]\n{"key":1,"kind":"command","payload":{}}\n{"key":"ok","kind":"command","payload":{}}\n'
        b'{"committed":"not-a-list"}\n\n'
    )
    assert [e["key"] for e in read_journal(path)] == ["ok"]


def test_a_journal_that_cannot_be_written_says_so_and_is_not_used_again(tmp_path):
    j = journal(tmp_path)
    j.append("k1", "command", "{}")
    os.close(j._current.fd)  # noqa: SLF001 - the file is gone from under us (as with EIO or a full disk)
    with pytest.raises(JournalBroken):
        j.append("k2", "command", "{}")
    assert not j.usable
    with pytest.raises(JournalBroken):
        j.append("k3", "command", "{}")
    j._segments.clear()  # noqa: SLF001 - its descriptor is already closed above


def test_lines_from_many_threads_never_interleave(tmp_path):
    j = journal(tmp_path)
    big = json.dumps(
        {"text": "x" * 3000, "form": {"scope": "y" * 2000}}
    )  # lines larger than a pipe's atomic size

    def write(t: int) -> None:
        for i in range(300):
            j.append(f"t{t}-{i}", "command", big if i % 3 == 0 else payload(i))

    threads = [threading.Thread(target=write, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = read_journal(j.path)
    assert len(entries) == 8 * 300
    assert {e["key"] for e in entries} == {f"t{t}-{i}" for t in range(8) for i in range(300)}
    assert [e["key"] for e in entries if e["key"].startswith("t3-")] == [
        f"t3-{i}" for i in range(300)
    ]  # in order
    j.committed([e["key"] for e in entries])
    assert os.path.getsize(j.path) == 0
    j.close(remove=True)


def line_bytes() -> int:
    """The size of one line of these tests (keys k00…k99)."""
    return len(f'{{"key":"k00","kind":"command","payload":{payload(1)}}}\n'.encode())


def test_under_load_that_never_pauses_a_new_file_is_started_and_the_old_one_deleted_once_committed(tmp_path):
    j = RequestJournal(tmp_path / "j", "busy", segment_bytes=4 * line_bytes()).open()  # 4 lines a file
    keys = [f"k{i:02d}" for i in range(12)]
    for key in keys:
        j.append(key, "command", payload(1))
    files = j.files()
    assert len(files) == 3 and all(p.exists() for p in files)
    assert [e["key"] for p in files for e in read_journal(p)] == keys
    j.committed(keys[:4])  # all of the first file's lines: it goes
    assert not files[0].exists() and files[1].exists()
    j.committed(keys[5:8])  # part of the second: it stays, with the committed line
    assert [e["key"] for e in read_journal(files[1])] == ["k04"]
    # a stopped process's files are each taken
    j.close(remove=True)
    live = journal(tmp_path, "live")
    taken = {o.path.name: [e["key"] for e in o.entries] for o in live.orphans()}
    assert taken == {files[1].name: ["k04"], files[2].name: keys[8:]}
    live.close(remove=True)


def test_the_file_being_appended_to_is_cut_back_not_deleted(tmp_path):
    j = RequestJournal(tmp_path / "j", "busy", segment_bytes=4 * line_bytes()).open()
    for i in range(6):
        j.append(f"k{i:02d}", "command", payload(1))
    first, second = j.files()
    j.committed([f"k{i:02d}" for i in range(6)])
    assert not first.exists() and second.exists() and os.path.getsize(second) == 0
    j.append("k06", "command", payload(1))
    assert j.files() == [second] and [e["key"] for e in read_journal(second)] == ["k06"]
    j.committed(["k06"])
    j.close(remove=True)
    assert not second.exists()
