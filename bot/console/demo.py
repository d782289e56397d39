"""`contract-bot demo`: the ICE / Paragon timeline (EO14093.md §5) replayed through the console, unattended."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TextIO

from bot.config import Settings
from bot.console.repl import Console, quiet_logs

DEMO_START = datetime(2024, 9, 27, 14, 0, tzinfo=UTC)  # 10:00 in New York, the day of the award

# The ICE HSI x Paragon timeline from EO14093.md §5. Lines marked [supposed] are not in the public record:
# whether any review, certification, APNSA notice or waiver happened is unknown; the demo supposes one path.
DEMO_SCRIPT = """
# ==== EO 14093 demo: ICE HSI x Paragon Solutions (EO14093.md §5) ====
# Public record: award 2024-09-27, stop-work 2024-10-08, WhatsApp (Jan 2025), COPASIR and Citizen Lab (June 2025),
# stop-work lifted 2025-08-29 with no published finding, closed January 2026.
# Steps marked [supposed] are NOT public (reviewers' answers, determination, certification, APNSA notice);
# they show the path EO 14093 requires. The product was never named; Graphite is UNCONFIRMED.
# Where the public record differs from EO14093.md (which follows WIRED): reports date the contract 27 or
# 30 September 2024, and name the buyer as HSI Division 3 or ICE's IT division. The demo files it as WIRED did.
time 2024-09-27
# 2024-09-27 [public] HSI Division 3 signs a one-year, ~$2 million sole-source contract with Paragon's U.S. subsidiary
# (other reports: 30 September 2024, and ICE's IT division as the buyer).
as mel
/contract file vendor="Paragon Solutions" product="unnamed (Graphite UNCONFIRMED)" agency=ICE component="HSI Division 3" value=2000000 awarded=2024-09-27 term="one year" purpose=operational third_party=no parent="Paragon Solutions Ltd. (Israel)" scope="U.S. subsidiary, Chantilly VA. Fully configured proprietary solution: license, hardware, warranty, maintenance and training (sole source, FAR 6.302-1)"
as max
/contract assign CR-1 @rae
# 2024-10-01 [public] WIRED first reports the contract.
time 2024-10-08
# 2024-10-08 [public] HSI issues a stop-work order to review and verify compliance with EO 14093.
/contract stopwork CR-1 reason="HSI stop-work order: review and verify compliance with EO 14093 (DHS spokesperson)"
time +1d
# [supposed] The reviewer starts scoping, with the buttons in the thread (numbers are the choices shown above).
as rae
press SCOPE-1 Yes
press SCOPE-2 Yes
press SCOPE-3 No
press SCOPE-4 Yes
press SCOPE-5 Yes
time +1d
time +1d
time +3d
# [supposed] Procurement (§3): whether these steps came before the award is not public.
/contract answer CR-1 PROC-1 unknown note="[supposed] not public whether the DNI assessment was read before award"
/contract answer CR-1 PROC-2 unknown note="[supposed] not public"
/contract answer CR-1 PROC-3 yes note="[supposed] weighed during the stop-work review"
/contract answer CR-1 PROC-4 unknown note="[supposed] not public"
/contract answer CR-1 CI-1 no note="[supposed]"
/contract answer CR-1 CI-2 no note="[supposed]"
/contract answer CR-1 CI-3 no note="[supposed]"
/contract answer CR-1 CI-4 yes note="[supposed] parent is an Israeli company (before the Dec 2024 acquisition)"
/contract show CR-1
time 2025-01-06
# Dec 2024 [public, press] AE Industrial Partners (Florida) acquires Paragon, reportedly ~$500M.
# [supposed] The reviewer revisits CI-4 (answers can change until a determination; the audit keeps each version).
/contract answer CR-1 CI-4 no note="[supposed] Dec 2024: acquired by AE Industrial Partners (U.S.); ownership alone does not settle IU-*"
time 2025-01-07
# 2025-01-06: 90 days after the stop-work order (FAR 52.242-15). No extension is public: the order lapsed, and the
# bot says so; failing safe, it keeps treating the order as blocking operational use until its end is recorded.
time 2025-01-31
# 2025-01-31 [public] WhatsApp says about 90 of its users were targeted with Paragon's Graphite and notifies them.
# New information about the vendor (§2(j)): a §2(j) review opens on its open contracts.
as max
/contract vendor event "Paragon Solutions" kind=report on=2025-01-31 note="[public] WhatsApp says about 90 of its users, journalists and members of civil society among them, were targeted with Paragon's Graphite, and notifies them" source="WhatsApp's statement of 31 January 2025, as reported by Reuters and The Guardian"
time 2025-02-03
as rae
/contract answer CR-1 IU-1 yes note="[public] WhatsApp (Jan 2025): the same vendor's spyware used against journalists and activists"
/contract answer CR-1 IU-2 no note="[supposed]"
/contract answer CR-1 IU-3 no note="[supposed]"
/contract answer CR-1 MIT-1 yes note="[supposed]"
/contract answer CR-1 MIT-2 yes note="[supposed] Paragon said it stopped working with Italian agencies"
/contract answer CR-1 MIT-3 yes note="[supposed]"
/contract answer CR-1 MIT-4 yes note="[supposed]"
time 2025-06-05
# June 2025 [public] Italy's parliamentary committee for the intelligence services (COPASIR) confirms Paragon's
# Italian customers (the committee's report; the exact day is from press accounts).
as max
/contract vendor event "Paragon Solutions" kind=report on=2025-06-05 note="[public] COPASIR, Italy's parliamentary oversight committee for the intelligence services, confirms that Italian services were Paragon customers and used Graphite" source="COPASIR report to Parliament, June 2025"
time 2025-06-12
# 2025-06-12 [public] Citizen Lab's forensic confirmation of Graphite on journalists' phones.
/contract vendor event "Paragon Solutions" kind=report on=2025-06-12 note="[public] Citizen Lab confirms Paragon's Graphite forensically on the iPhones of journalists in Europe" source="Citizen Lab, 12 June 2025: first forensic confirmation of Paragon's iOS spyware"
/contract show CR-1
time 2025-08-29
# 2025-08-29 [public] A contract modification lifts the stop-work order (public notice dated Aug 29); no finding
# was published. Nothing the order requires is on record: the bot says its conditions are not met.
/contract resume CR-1 reason="[public] contract modification lifts the stop-work order (public notice dated 2025-08-29; no finding published)"
/contract show CR-1
# ==== [supposed] What EO 14093 would still require before any operational use ====
as olu
# [supposed] The relevant official (for DHS, the Secretary of Homeland Security) determines, answering the §2(j) review.
time 2025-09-15
/contract determine CR-1 not-risky reason="[supposed] IU-1: vendor ended the Italian contracts (MIT-2) and now operates under U.S. ownership with verifiable end-use controls"
time 2025-09-17
# §2(f): certification is a separate act; whoever recorded the determination may not record it too.
/contract certify CR-1 official="Secretary of Homeland Security"
as oba
/contract certify CR-1 official="Secretary of Homeland Security"
as max
time 2025-09-18
# [supposed] The agency head notifies the APNSA under §2(g); operational use waits 7 days.
/contract notify CR-1
# The App Home dashboard during the waiting period: waiting period end, deadlines.
home
time 2025-09-25
/contract show CR-1
time 2026-01-20
# January 2026 [public] NPR: the contract was closed out; the exact date 2026-01-20 is UNCONFIRMED.
/contract close CR-1 reason="contract closed out (NPR, January 2026; exact date UNCONFIRMED)"
# ==== Reminders that fired ====
reminders
# ==== Final record ====
/contract show CR-1
/contract audit CR-1
# ==== The order's paperwork, drafted from the record ====
# The §2(g) notice to the APNSA (a Word file and the same in Markdown, sent to Max privately).
/contract draft CR-1 apnsa
# The §4(d) annual report covering the 2024-2025 reporting year (28 March 2024 to 27 March 2025).
/contract report annual year=2025
"""


def run_demo(*, stdout: TextIO | None = None, settings: Settings | None = None) -> int:
    """`contract-bot demo`: replay the ICE / Paragon timeline through the console and print the transcript."""
    stdout = stdout or sys.stdout
    quiet_logs()
    console = Console(
        settings or Settings(bot_timezone="America/New_York"), out=stdout, start=DEMO_START, echo=True
    )
    try:
        for line in DEMO_SCRIPT.strip().splitlines():
            console.run_line(line)
        stdout.flush()
    finally:
        console.close()
    return 0
