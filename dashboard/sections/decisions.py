"""Signed decisions and stage gates in the UI (DESIGN §5, §8).

- :func:`render_pilot`: the Pilot page's decision record and the stage gates ahead.
- :func:`render_record_form`: the Export page's "Record a decision" form (admin only).
- :func:`render_stage_move`: the Export page's stage-move control with its gate.
- :func:`render_portfolio`: the Portfolio page's view of decisions.

Reads are cached by data version; writes go through :mod:`metrics.governance` and
:func:`metrics.store.set_stage` in one session each, applied only on submit.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import sqlalchemy as sa
import streamlit as st

from dashboard import components as ui
from dashboard import state
from dashboard.charts import RECOMMENDATION_LABELS
from dashboard.sections import report as report_section
from metrics import computations as C
from metrics import governance, service, store
from metrics.db import failure_reason, session_scope
from metrics.errors import StoreError
from metrics.models import DecisionKind, Role, Stage

FLASH = "_decision_flash"
DECISION_KINDS = [k.value for k in DecisionKind]
DECISION_LABELS = {"go": "go", "extend": "extend", "no_go": "no-go"}
DECISION_COLORS = {"go": "green", "extend": "orange", "no_go": "red"}


# --------------------------------------------------------------------------- cached reads


@st.cache_data(ttl=state.CACHE_TTL, show_spinner=False)
def decisions(version: tuple, pilot_id: int | None = None) -> pd.DataFrame:
    """:func:`metrics.governance.decisions_frame` (cached by data version)."""
    with session_scope(state.get_engine()) as s:
        return governance.decisions_frame(s, pilot_id=pilot_id)


@st.cache_data(ttl=state.CACHE_TTL, show_spinner=False)
def latest_decisions(version: tuple, judged_by: date | None = None) -> pd.DataFrame:
    """:func:`metrics.governance.latest_decisions_frame` (cached by data version);
    ``judged_by``: only decisions judged as of that day or earlier (a page's as-of
    date: a Portfolio judged as of a past day shows the decisions that existed then)."""
    with session_scope(state.get_engine()) as s:
        return governance.latest_decisions_frame(s, judged_by=judged_by)


@st.cache_data(ttl=state.CACHE_TTL, show_spinner=False)
def gate(version: tuple, pilot_id: int, to_stage: str) -> governance.GateCheck:
    """:func:`metrics.governance.stage_gate` (cached by data version)."""
    with session_scope(state.get_engine()) as s:
        return governance.stage_gate(s, pilot_id=pilot_id, to_stage=to_stage)


# --------------------------------------------------------------------------- helpers


def decision_text(kind: object) -> str:
    """``go`` / ``extend`` / ``no-go``; ``—`` when there is none."""
    if kind is None or (isinstance(kind, float) and pd.isna(kind)):
        return "—"
    return DECISION_LABELS.get(str(kind), str(kind))


def _show_flash() -> None:
    message = st.session_state.pop(FLASH, None)
    if message:
        st.success(ui.md_escape(message))


def _gate_lines(check: governance.GateCheck) -> str:
    """The gate's requirements as a neutral checklist (Material icons, readable without
    an emoji font): a ticked box = met, an empty box = not yet."""
    if not check.requirements:
        return f"No gate: moving to {check.to_stage} needs no recorded decision."
    return "  \n".join(
        f"{ui.MET_ICON if ok else ui.UNMET_ICON} {'met' if ok else 'not yet'}: "
        f"{ui.md_escape(ui.friendly(text))}"
        for text, ok in check.requirements
    )


# --------------------------------------------------------------------------- Pilot page


def render_pilot(*, pilot_id: int, version: tuple) -> None:
    """The Pilot page's decision section: latest decision, history, the gates ahead."""
    st.divider()
    st.subheader("Decisions and stage gates")
    history = decisions(version, pilot_id)
    if history.empty:
        st.caption("No decision recorded yet.")
    else:
        last = history.iloc[-1]
        st.badge(
            f"Decision: {decision_text(last[governance.DECISION])}",
            color=DECISION_COLORS.get(last[governance.DECISION], "gray"),
        )
        st.markdown(
            f"Recorded by **{ui.md_escape(last[governance.DECIDED_BY])}** on "
            f"{last[governance.DECIDED_AT]:%Y-%m-%d %H:%M} UTC, judged as of "
            f"{last[governance.AS_OF]:%Y-%m-%d} (recommendation then: "
            f"{ui.recommendation_text(last[governance.DECISION_RECOMMENDATION])})."
        )
        if last[governance.RATIONALE]:
            st.markdown(f"**Rationale:** {ui.md_escape(last[governance.RATIONALE])}")
        shown = history.iloc[::-1]
        st.dataframe(
            pd.DataFrame(
                {
                    "Decided at (UTC)": shown[governance.DECIDED_AT].dt.strftime("%Y-%m-%d %H:%M"),
                    "Decision": shown[governance.DECISION].map(decision_text),
                    "Recommendation then": shown[governance.DECISION_RECOMMENDATION].map(
                        ui.recommendation_text
                    ),
                    "Judged as of": shown[governance.AS_OF].dt.strftime("%Y-%m-%d"),
                    "Decided by": shown[governance.DECIDED_BY],
                    "Rationale": shown[governance.RATIONALE],
                }
            ),
            hide_index=True,
            placeholder="—",
            key=f"decision-history-{pilot_id}",
        )
    pilots = state.pilots(version)
    row = pilots[pilots[C.PILOT_ID] == pilot_id]
    if row.empty:
        return
    current = str(row["stage"].iloc[0])
    ahead = governance.NEXT_STAGES.get(current, ())
    if not ahead:
        st.caption(f"Stage {current}: no further stage.")
    for to_stage in ahead:
        check = gate(version, pilot_id, to_stage)
        verdict = "open" if check.allowed else "blocked"
        st.markdown(f"**Stage gate {current} → {to_stage}** ({verdict})  \n" + _gate_lines(check))
    if state.can(Role.admin):
        st.page_link(
            ui.PAGE_EXPORT,
            label="Record a decision or move the stage (Export page)",
            icon=":material/gavel:",
            query_params={ui.PILOT_QP: str(pilot_id)},
        )


# --------------------------------------------------------------------------- Export page


def render_record_form(*, pilots: pd.DataFrame, as_of: date, version: tuple) -> None:
    """The "Record a decision" form: admin only (nothing is shown to other roles).

    Args:
        pilots: ``metrics.service.Evaluation.pilots`` as of ``as_of`` (pilot_id, pilot,
            stage, recommendation, reasons).
    """
    if pilots.empty or not state.can(Role.admin):
        return
    st.divider()
    st.subheader("Record a decision")
    _show_flash()
    pilot_id = ui.pilot_picker(pilots, key="decide_pilot", label="Pilot to decide on")
    if pilot_id is None:  # a link naming no pilot (the picker said so)
        return
    row = pilots[pilots[C.PILOT_ID] == pilot_id].iloc[0]
    rec = str(row[C.RECOMMENDATION])
    ui.recommendation_badge(rec)
    reasons = [r for r in str(row.get(C.REASONS) or "").split("; ") if r]
    if reasons:
        st.markdown("\n".join(f"- {ui.md_escape(r)}" for r in reasons))
    latest = latest_decisions(version)
    prev = latest[latest[C.PILOT_ID] == pilot_id]
    if not prev.empty:
        p = prev.iloc[0]
        st.caption(
            f"Latest decision: {decision_text(p[governance.DECISION])} by "
            f"{ui.md_escape(p[governance.DECIDED_BY])} on {p[governance.DECIDED_AT]:%Y-%m-%d}."
        )
    # the decision report of this evidence: its hash is stored with the decision
    shown_hash = report_section.report_hash(version, as_of, pilot_id)
    gen_key = f"_decide_gen_{pilot_id}"
    gen = st.session_state.get(gen_key, 0)
    with st.form(key=f"decide-form-{pilot_id}-{gen}", enter_to_submit=False):
        choice = st.radio(
            "Decision",
            DECISION_KINDS,
            index=DECISION_KINDS.index(rec) if rec in DECISION_KINDS else None,
            format_func=decision_text,
            horizontal=True,
            key=f"decide-choice-{pilot_id}-{gen}",
        )
        rationale = st.text_area(
            "Rationale",
            key=f"decide-rationale-{pilot_id}-{gen}",
            max_chars=4000,
            help="Required when the decision differs from the recommendation.",
        )
        today = service.today()
        st.caption(
            f"Recommendation as of {as_of:%Y-%m-%d}: "
            f"{RECOMMENDATION_LABELS.get(rec, rec)}. A different decision needs a rationale, "
            "and so does a decision judged as of a day other than today"
            + (
                f" (this one is judged as of {as_of:%Y-%m-%d}, today is {today:%Y-%m-%d}: "
                "say why, e.g. recording the steering committee's decision of that day)"
                if as_of != today
                else ""
            )
            + f". The summary as of {as_of:%Y-%m-%d} is saved with the decision, signed by "
            f"{ui.md_escape(state.current_actor())}"
            + (
                f", with the SHA-256 of its decision report ({shown_hash[:16]}…)."
                if shown_hash
                else "."
            )
        )
        submitted = st.form_submit_button("Save decision", type="primary")
    if not submitted:
        return
    if choice is None:
        st.error("Not saved: choose go, extend or no-go.")
        return
    try:
        with session_scope(state.get_engine()) as s:
            res = service.record_decision(
                session=s,
                actor=state.current_actor(),
                pilot_id=pilot_id,
                decision=choice,
                rationale=rationale,
                as_of=as_of,
                report_hash=shown_hash,
            )
    except StoreError as exc:
        st.error(ui.refusal("Not saved", exc))
        return
    except (sa.exc.OperationalError, sa.exc.InternalError) as exc:
        st.error(f"Not saved: {failure_reason(exc)}.")
        return
    state.after_write()
    st.session_state[FLASH] = (
        f"Decision {decision_text(res.decision)} recorded for {row[C.PILOT]} "
        f"(recommendation {RECOMMENDATION_LABELS.get(res.recommendation, res.recommendation)} "
        f"as of {as_of:%Y-%m-%d})."
    )
    st.session_state[gen_key] = gen + 1
    st.rerun()


def render_stage_move(*, pilots: pd.DataFrame, version: tuple) -> None:
    """The stage-move control with its gate explained: admin only."""
    if pilots.empty or not state.can(Role.admin):
        return
    st.subheader("Move a pilot to its next stage")
    pilot_id = st.session_state.get(ui.PILOT_KEY)
    ids = [int(x) for x in pilots[C.PILOT_ID]]
    if pilot_id not in ids:
        pilot_id = ids[0]
    row = pilots[pilots[C.PILOT_ID] == pilot_id].iloc[0]
    current = str(row["stage"])
    ahead = list(governance.NEXT_STAGES.get(current, ()))
    st.markdown(f"**{ui.md_escape(row[C.PILOT])}** is in stage **{current}**.")
    if not ahead:
        st.caption(f"A {current} pilot has no further stage.")
        return
    gen_key = f"_stage_gen_{pilot_id}"
    gen = st.session_state.get(gen_key, 0)
    to_stage = st.selectbox(
        "Move to",
        ahead,
        key=f"stage-to-{pilot_id}-{gen}",
        help="Stages: discovery → pilot → production → transition; any stage → stopped.",
    )
    check = gate(version, pilot_id, to_stage)
    # The gate as a neutral checklist; a refusal only once the move is tried.
    st.markdown(f"Stage gate {current} → {to_stage}:  \n" + _gate_lines(check))
    if not check.allowed:
        st.caption("Before moving: " + ui.md_escape(ui.friendly("; ".join(check.blockers))) + ".")
    with st.form(key=f"stage-form-{pilot_id}-{gen}", enter_to_submit=False):
        note = st.text_input("Note (optional)", key=f"stage-note-{pilot_id}-{gen}", max_chars=1000)
        moved = st.form_submit_button(f"Move to {to_stage}", type="primary")
    if not moved:
        return
    try:
        with session_scope(state.get_engine()) as s:
            store.set_stage(
                session=s,
                actor=state.current_actor(),
                pilot_id=pilot_id,
                stage=to_stage,
                note=note.strip(),
            )
    except StoreError as exc:
        st.error(ui.refusal("Not moved", exc))
        return
    except (sa.exc.OperationalError, sa.exc.InternalError) as exc:
        st.error(f"Not moved: {failure_reason(exc)}.")
        return
    state.after_write()
    st.session_state[FLASH] = f"{row[C.PILOT]} moved from {current} to {to_stage}."
    st.session_state[gen_key] = gen + 1
    st.rerun()


# --------------------------------------------------------------------------- Portfolio page


def render_portfolio(*, pilots: pd.DataFrame, as_of: date, version: tuple) -> None:
    """The Portfolio page's view of decisions.

    Args:
        pilots: ``metrics.service.Evaluation.pilots`` (pilot_id, pilot, stage,
            decision_date, recommendation).
    """
    st.divider()
    st.subheader("Decisions")
    latest = latest_decisions(version, as_of)  # the decisions recorded as of that day

    counts = governance.recommendation_stage_counts(pilots)
    stages = [s.value for s in Stage]
    st.markdown("**Pilots per recommendation and stage**")
    st.dataframe(
        pd.DataFrame(
            {"Recommendation": [ui.recommendation_text(r) for r in counts.index]}
            | {s: counts[s].to_numpy() for s in stages}
            | {"Total": counts["total"].to_numpy()}
        ),
        hide_index=True,
        key="portfolio-rec-stage",
    )

    decided = latest[latest[C.PILOT_ID].isin(pilots[C.PILOT_ID])]
    kinds = decided[governance.DECISION].value_counts()
    with st.container(horizontal=True, gap="small", key="portfolio-decision-counts"):
        for kind in DECISION_KINDS:
            st.metric(
                f"Decided {decision_text(kind)}",
                int(kinds.get(kind, 0)),
                border=True,
                width="content",
            )
        st.metric("No decision", len(pilots) - len(decided), border=True, width="content")

    overdue = governance.decisions_overdue(pilots, latest, as_of=as_of)
    st.markdown(
        f"**Overdue decisions**: decision date passed, no decision recorded "
        f"(as of {as_of:%Y-%m-%d})"
    )
    if overdue.empty:
        st.caption(f"No decision is overdue as of {as_of:%Y-%m-%d}.")
    else:
        st.dataframe(
            pd.DataFrame(
                {
                    "Pilot": overdue[C.PILOT],
                    "Stage": overdue["stage"],
                    "Decision date": overdue[C.DECISION_DATE].dt.date,
                    "Overdue": [
                        ui.decision_countdown(d.date(), as_of) for d in overdue[C.DECISION_DATE]
                    ],
                    "Recommendation": overdue[C.RECOMMENDATION].map(ui.recommendation_text),
                }
            ),
            hide_index=True,
            key="portfolio-overdue",
            column_config={
                "Decision date": st.column_config.DateColumn(format="YYYY-MM-DD"),
            },
        )

    due = governance.decisions_due(pilots, latest, as_of=as_of)
    st.markdown(
        f"**Decision date within {governance.DUE_WITHIN_DAYS} days** (from {as_of:%Y-%m-%d})"
    )
    if due.empty:
        st.caption(f"No pilot's decision date falls within 2 weeks of {as_of:%Y-%m-%d}.")
    else:
        st.dataframe(
            pd.DataFrame(
                {
                    "Pilot": due[C.PILOT],
                    "Stage": due["stage"],
                    "Decision date": due[C.DECISION_DATE].dt.date,
                    "Decision due": [
                        ui.decision_countdown(d.date(), as_of) for d in due[C.DECISION_DATE]
                    ],
                    "Recommendation": due[C.RECOMMENDATION].map(ui.recommendation_text),
                    "Recorded decision": due[governance.DECISION].map(decision_text),
                }
            ),
            hide_index=True,
            key="portfolio-due",
            column_config={
                "Decision date": st.column_config.DateColumn(format="YYYY-MM-DD"),
            },
        )

    against = governance.contradicting_decisions(pilots, latest)
    st.markdown("**Recorded decision differs from the current recommendation**")
    if against.empty:
        st.caption("Every recorded decision matches its pilot's current recommendation.")
    else:
        st.dataframe(
            pd.DataFrame(
                {
                    "Pilot": against[C.PILOT],
                    "Stage": against["stage"],
                    "Recommendation now": against[C.RECOMMENDATION].map(ui.recommendation_text),
                    "Recorded decision": against[governance.DECISION].map(decision_text),
                    "Recommendation then": against[governance.DECISION_RECOMMENDATION].map(
                        ui.recommendation_text
                    ),
                    "Decided by": against[governance.DECIDED_BY],
                    "Decided at (UTC)": pd.to_datetime(
                        against[governance.DECIDED_AT], utc=True
                    ).dt.strftime("%Y-%m-%d %H:%M"),
                    "Rationale": against[governance.RATIONALE],
                }
            ),
            hide_index=True,
            key="portfolio-contradictions",
        )
