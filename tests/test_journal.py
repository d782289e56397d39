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
    return json.dumps({"text": f"file vendor=V{i} product=P{i} agency=ICE", "note": 'caf\u00e9 "quoted"\nline'},
                      ensure_ascii=False)


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
    path.write_bytes(b'[1,2]\n{"key":1,"kind":"command","payload":{}}\n{"key":"ok","kind":"command","payload":{}}\n'
                     b'{"committed":"not-a-list"}\n\n')
    assert [e["key"] for e in read_journal(path)] == ["ok"]


def test_a_journal_that_cannot_be_written_says_so_and_is_not_used_again(tmp_path):
    j = journal(tmp_path)
    j.append("k1", "command", "{}")
    os.close(j._fd)  # noqa: SLF001 - the file is gone from under us (as with EIO or a full disk)
    with pytest.raises(JournalBroken):
        j.append("k2", "command", "{}")
    assert not j.usable
    with pytest.raises(JournalBroken):
        j.append("k3", "command", "{}")
    j._fd = None  # noqa: SLF001 - already closed above


def test_lines_from_many_threads_never_interleave(tmp_path):
    j = journal(tmp_path)
    big = json.dumps({"text": "x" * 3000, "form": {"scope": "y" * 2000}})  # lines larger than a pipe's atomic size

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
    assert [e["key"] for e in entries if e["key"].startswith("t3-")] == [f"t3-{i}" for i in range(300)]  # in order
    j.committed([e["key"] for e in entries])
    assert os.path.getsize(j.path) == 0
    j.close(remove=True)
