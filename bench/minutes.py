"""Time to render the minutes PDF of a consult with 50 notes and 5 attachments (p50 over 20 runs), and its size.

python -m bench.minutes    prints the figures (docs/benchmarks.md, "Minutes as a PDF"); asserts nothing.

The record is what `server.actions.record.build` returns, made up here: four participants, 50 notes
over the six sections (every fifth amended once), five attachments, an outcome and a result. It
times `server.actions.minutes_pdf.render` alone: the database reads before it are the record's.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from server.actions.minutes_pdf import MinutesInfo, render
from server.records.notes import SECTION_NAMES

RUNS = 20
START = datetime(2025, 3, 5, 1, 0, tzinfo=UTC)


def _person(n: int, role: str, hospital: str) -> dict[str, Any]:
    return {
        "id": f"u{n}",
        "name": f"BS. Nguyễn Văn Người {n}",
        "role": role,
        "hospital": {"id": hospital, "name": hospital},
    }


def made_up_record() -> dict[str, Any]:
    people = [
        _person(1, "clinician", "Bệnh viện Đa khoa huyện Ba Vì"),
        _person(2, "specialist", "Bệnh viện Đa khoa Xanh Pôn"),
        _person(3, "clinician", "Bệnh viện Đa khoa huyện Ba Vì"),
        _person(4, "specialist", "Bệnh viện Bạch Mai"),
    ]
    at = lambda minutes: (START + timedelta(minutes=minutes)).isoformat()  # noqa: E731
    sections = list(SECTION_NAMES)
    notes = []
    for i in range(50):
        author = people[i % 4]
        text = (
            f"Ý kiến số {i + 1}: đau hố chậu phải, sốt 38,5 độ, bạch cầu tăng; đề nghị siêu âm ổ bụng và theo dõi sát. "
            * 2
        )
        history = [{"text": "Nội dung cũ " + text, "author": author, "created_at": at(i)}] if i % 5 == 0 else []
        notes.append(
            {"section": sections[i % 6], "text": text, "author": author, "created_at": at(i + 1), "history": history}
        )
    files = [
        {"filename": f"phim-xquang-{i}.png", "uploader": people[0], "created_at": at(i), "size": 250_000 + i}
        for i in range(5)
    ]
    consult = {
        "patient": {
            "ref": "BV-0042",
            "age": 64,
            "sex": "female",
            "summary": "Đau bụng hố chậu phải 2 ngày",
            "name": "Nguyễn Thị Hoa",
            "birth_date": "1961-04-09",
            "national_id": "001161012345",
        },
        "specialty": "surgery",
        "urgency": "urgent",
        "requester": people[0],
        "specialist": people[1],
        "created_at": at(0),
        "started_at": at(1),
        "ended_at": at(60),
        "outcome": "treated_locally",
        "summary": "Mổ nội soi tại chỗ, có hướng dẫn",
        "result": {
            "result": "recovered",
            "note": "Ra viện sau 5 ngày",
            "reported_by": people[0],
            "reported_at": at(9000),
        },
    }
    return {
        "consult": consult,
        "hospital": {"id": "bavi-dgh", "name": "Bệnh viện Đa khoa huyện Ba Vì", "level": "district"},
        "participants": [{**p, "part": "team"} for p in people],
        "timeline": [],
        "notes": notes,
        "attachments": files,
    }


def main() -> None:
    record = made_up_record()
    info = MinutesInfo(12, "Hà Nội", None, None, {"u1": 3540.0, "u2": 3500.0, "u3": 600.0}, {"u2": ["surgery"]})
    render(record, info)  # warm: fonts parsed once per process
    times, size = [], 0
    for _ in range(RUNS):
        began = time.perf_counter()
        body = render(record, info)
        times.append(time.perf_counter() - began)
        size = len(body)
    print(
        f"minutes PDF, 50 notes (10 amended), 5 attachments: render p50 {statistics.median(times) * 1000:.0f} ms "
        f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}) over {RUNS} runs; {size / 1024:.0f} KB"
    )


if __name__ == "__main__":
    main()
