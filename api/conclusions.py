"""Casework: searches remembered, and the ACE-V conclusions examiners record on their candidates.

Every ``POST /v1/search`` is kept in ``api.sqlite`` (``searches``: id, key, bureau, time,
case reference and the answer as sent, candidates with their scores), so the workbench
can reopen it and conclusions can refer to it.  A conclusion (``conclusions``) is one
examiner key's identification, exclusion or inconclusive on one candidate of one
search of its bureau, with a note:

- the first on a (search, candidate) pair is the ``initial`` one; one by another key is a
  ``verification``; the same key twice is refused (409);
- the pair's status: ``pending`` (one conclusion), ``verified`` (all of two or more
  agree), ``disagreement`` (they differ: flagged for review).  It is computed by SQL
  (:data:`_PAIRS`) from the rows, never stored, so listing by status pages in SQL;
- blind verification: an examiner is shown only their own conclusions on a candidate
  until they have recorded one there, then all of them (the pair's status and whether
  it awaits verification are shown to everyone; the values are not); auditors see all.

A search or candidate the caller may not see answers 404 with the text of a missing
one.  Every conclusion, refusal and read goes into the store's one audit log.

Retention: a search nobody concluded on is an ordinary search result and expires with
the batch jobs (``--job-retention-days``, :func:`expire_searches`); a search with a
conclusion is a case record and is kept, like the audit log.
"""

from __future__ import annotations

import json
import time

from anyio.to_thread import run_sync

from indexer.audit import AuditLog

from . import schemas as S
from .access import AccessRules
from .database import ApiDatabase
from .keys import KeyRecord
from .problems import TYPE_BASE, Problem

SEARCH_FORMAT = 1
"""Version of the JSON kept in ``searches.result``."""

_STATUS = ("CASE WHEN COUNT(*) = 1 THEN 'pending' WHEN COUNT(DISTINCT c.conclusion) = 1 THEN 'verified' "
           "ELSE 'disagreement' END")
#: One row per (search, candidate) pair with a conclusion: the one definition of its status.
_PAIRS = f"""
SELECT c.search_id, c.subject, s.case_ref, {_STATUS} AS status, MIN(c.created) AS first_at
FROM conclusions c JOIN searches s ON s.id = c.search_id
WHERE (:bureau IS NULL OR s.bureau = :bureau) AND (:search IS NULL OR s.id = :search)
  AND (:case IS NULL OR s.case_ref = :case) AND c.subject NOT IN (SELECT value FROM json_each(:hidden))
GROUP BY c.search_id, c.subject
"""
_CONCLUSION_COLS = "id, search_id, subject, key_id, conclusion, note, created, kind"


def _who(caller: KeyRecord) -> dict:
    return {"key": caller.id, "role": caller.role, "bureau": caller.bureau}


def _no_search(search_id: str) -> Problem:
    return Problem(404, f"no search {search_id!r} of your bureau", type_=TYPE_BASE + "not-found")


def _no_candidate(search_id: str, subject: str) -> Problem:
    return Problem(404, f"no candidate {subject!r} of search {search_id!r} is visible to your bureau",
                   type_=TYPE_BASE + "not-found")


def expire_searches(db: ApiDatabase, older_than: float) -> list[str]:
    """Delete the searches made before ``older_than`` (epoch s) that hold no conclusion."""
    with db.write() as con:
        ids = [r[0] for r in con.execute(
            "SELECT id FROM searches WHERE created < ? AND id NOT IN (SELECT search_id FROM conclusions)",
            (older_than,))]
        con.executemany("DELETE FROM searches WHERE id=?", [(i,) for i in ids])
    return ids


class Casework:
    """The ``searches`` and ``conclusions`` tables, with their access rules and audit entries."""

    def __init__(self, db: ApiDatabase, audit: AuditLog, access: AccessRules):
        self.db = db
        self.audit = audit
        self.access = access

    # -- searches -------------------------------------------------------------------------------
    def remember(self, caller: KeyRecord, out: S.SearchOut) -> None:
        """Keep a search's answer (one insert: no image, no extraction)."""
        with self.db.write() as con:
            con.execute("INSERT INTO searches(id, bureau, key_id, created, case_ref, result) VALUES (?, ?, ?, ?, ?, ?)",
                        (out.search_id, caller.bureau, caller.id, time.time(), out.case,
                         json.dumps({"format": SEARCH_FORMAT, "search": out.model_dump(mode="json")})))

    def _search(self, caller: KeyRecord, search_id: str) -> S.StoredSearch:
        """The search as stored, if the caller's bureau made it (a global auditor: any), with the
        candidates the caller's bureau may no longer see left out and the rest ranked again."""
        scope = None if caller.scope == "global" else caller.bureau
        rows = self.db.query("SELECT bureau, key_id, created, result FROM searches WHERE id=? "
                             "AND (? IS NULL OR bureau = ?)", (search_id, scope, scope))
        if not rows:
            raise _no_search(search_id)
        bureau, key_id, created, result = rows[0]
        stored = json.loads(result)
        if stored.get("format") != SEARCH_FORMAT:
            raise Problem(500, f"search {search_id!r} was stored in format {stored.get('format')}, "
                               f"this build reads {SEARCH_FORMAT}")
        out = S.StoredSearch(**stored["search"], created=created, examiner=key_id, bureau=bureau)
        hidden = self.access.hidden_from(bureau)
        out.candidates = [c for c in out.candidates if c.subject not in hidden]
        for rank, c in enumerate(out.candidates, 1):
            c.rank = rank
        return out

    async def read_search(self, caller: KeyRecord, search_id: str) -> S.StoredSearch:
        out = await run_sync(self._refusing, caller, "search-read", search_id, None, self._search, caller, search_id)
        await run_sync(self.audit.append, {**_who(caller), "action": "search-read", "search": search_id,
                                           "bureaus": [caller.bureau, out.bureau], "case": out.case,
                                           "candidates": [c.subject for c in out.candidates]})
        return out

    def _refusing(self, caller: KeyRecord, action: str, search_id: str, subject: str | None, fn, *args):
        """``fn(*args)``; a refusal (404, 409) is recorded before it is raised."""
        try:
            return fn(*args)
        except Problem as exc:
            self.audit.append({**_who(caller), "action": action, "search": search_id, "subject": subject,
                               "outcome": f"refused: {exc.status}", "reason": exc.detail[:300]})
            raise

    # -- conclusions ----------------------------------------------------------------------------
    @staticmethod
    def _pairs(*, bureau: str | None, search: str | None = None, case: str | None = None,
               hidden: set[str] = frozenset()) -> tuple[str, dict]:
        """:data:`_PAIRS` and its parameters."""
        return _PAIRS, {"bureau": bureau, "search": search, "case": case, "hidden": json.dumps(sorted(hidden))}

    def _status(self, con, search_id: str, subject: str) -> str | None:
        sql, params = self._pairs(bureau=None, search=search_id)
        rows = con.execute(f"SELECT status FROM ({sql}) WHERE subject = :subject", {**params, "subject": subject})
        row = rows.fetchone()
        return row[0] if row else None

    def _record(self, caller: KeyRecord, search_id: str, body: S.ConclusionIn) -> S.ConclusionOut:
        search = self._search(caller, search_id)
        if body.subject not in {c.subject for c in search.candidates}:
            raise _no_candidate(search_id, body.subject)
        with self.db.write() as con:  # one writer: two first conclusions cannot both be 'initial'
            keys = [r[0] for r in con.execute("SELECT key_id FROM conclusions WHERE search_id=? AND subject=?",
                                              (search_id, body.subject))]
            if caller.id in keys:
                raise Problem(409, f"this key already recorded a conclusion on {body.subject!r} in search "
                                   f"{search_id!r}; verification needs another examiner's key",
                              type_=TYPE_BASE + "conclusion-exists")
            kind = "verification" if keys else "initial"
            cur = con.execute("INSERT INTO conclusions(search_id, subject, key_id, conclusion, note, created, kind) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?)",
                              (search_id, body.subject, caller.id, body.conclusion, body.note, time.time(), kind))
            row = con.execute(f"SELECT {_CONCLUSION_COLS} FROM conclusions WHERE id=?", (cur.lastrowid,)).fetchone()
            status = self._status(con, search_id, body.subject)
        return _conclusion(row, search.case, status)

    async def record(self, caller: KeyRecord, search_id: str, body: S.ConclusionIn) -> S.ConclusionOut:
        out = await run_sync(self._refusing, caller, "conclusion", search_id, body.subject,
                             self._record, caller, search_id, body)
        await run_sync(self.audit.append, {
            **_who(caller), "action": "conclusion", "search": search_id, "case": out.case, "subject": out.subject,
            "conclusion_id": out.id, "conclusion": out.conclusion, "kind": out.kind, "status": out.status,
            "note": out.note})
        return out

    def _shown(self, caller: KeyRecord, search_id: str, case: str, subject: str, status: str | None,
               rows: list[tuple]) -> S.CandidateConclusions:
        """One candidate's conclusions as the caller may see them (the blind rule)."""
        mine = any(r[3] == caller.id for r in rows)
        shown = rows if caller.role == "auditor" or mine else []
        return S.CandidateConclusions(search_id=search_id, case=case, subject=subject, status=status,
                                      awaiting_verification=status == "pending", concluded_by_you=mine,
                                      conclusions=[_conclusion(r, case, status) for r in shown])

    def _conclusions_of(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], list[tuple]]:
        out: dict[tuple[str, str], list[tuple]] = {p: [] for p in pairs}
        if not pairs:
            return out
        rows = self.db.query(
            f"SELECT {_CONCLUSION_COLS} FROM conclusions WHERE (search_id, subject) IN "
            f"(VALUES {', '.join(['(?, ?)'] * len(pairs))}) ORDER BY created, id", tuple(x for p in pairs for x in p))
        for r in rows:
            out[(r[1], r[2])].append(r)
        return out

    def _of_search(self, caller: KeyRecord, search_id: str) -> tuple[S.SearchConclusions, str]:
        """The candidates' conclusions, and the search's bureau."""
        search = self._search(caller, search_id)
        sql, params = self._pairs(bureau=None, search=search_id)
        status = {r[0]: r[1] for r in self.db.query(f"SELECT subject, status FROM ({sql})", params)}
        subjects = [c.subject for c in search.candidates]
        rows = self._conclusions_of([(search_id, s) for s in subjects])
        return S.SearchConclusions(search_id=search_id, case=search.case, candidates=[
            self._shown(caller, search_id, search.case, s, status.get(s), rows[(search_id, s)])
            for s in subjects]), search.bureau

    async def of_search(self, caller: KeyRecord, search_id: str) -> S.SearchConclusions:
        out, bureau = await run_sync(self._refusing, caller, "conclusions-read", search_id, None,
                                     self._of_search, caller, search_id)
        await run_sync(self.audit.append, {**_who(caller), "action": "conclusions-read", "search": search_id,
                                           "bureaus": [caller.bureau, bureau], "case": out.case,
                                           **_read_summary(out.candidates)})
        return out

    def _page(self, caller: KeyRecord, case: str | None, status: str | None, offset: int,
              limit: int) -> S.ConclusionPage:
        scope = None if caller.scope == "global" else caller.bureau
        hidden = set() if scope is None else self.access.hidden_from(scope)
        sql, params = self._pairs(bureau=scope, case=case, hidden=hidden)
        params = {**params, "status": status, "limit": limit, "offset": offset}
        where = "WHERE (:status IS NULL OR status = :status)"
        total = self.db.query(f"SELECT COUNT(*) FROM ({sql}) {where}", params)[0][0]
        page = self.db.query(f"SELECT search_id, subject, case_ref, status FROM ({sql}) {where} "
                             "ORDER BY case_ref, first_at, search_id, subject LIMIT :limit OFFSET :offset", params)
        rows = self._conclusions_of([(r[0], r[1]) for r in page])
        items = [self._shown(caller, sid, case_ref, subject, st, rows[(sid, subject)])
                 for sid, subject, case_ref, st in page]
        return S.ConclusionPage(items=items, offset=offset, limit=limit, total=total)

    async def page(self, caller: KeyRecord, case: str | None, status: str | None, offset: int,
                   limit: int) -> S.ConclusionPage:
        out = await run_sync(self._page, caller, case, status, offset, limit)
        await run_sync(self.audit.append, {**_who(caller), "action": "conclusions-read", "case": case,
                                           "status": status, "offset": offset, "limit": limit, "total": out.total,
                                           **_read_summary(out.items)})
        return out


def _conclusion(row: tuple, case: str, status: str | None) -> S.ConclusionOut:
    cid, search_id, subject, key_id, conclusion, note, created, kind = row
    return S.ConclusionOut(id=cid, search_id=search_id, case=case, subject=subject, examiner=key_id,
                           conclusion=conclusion, note=note, created_at=created, kind=kind, status=status)


def _read_summary(items: list[S.CandidateConclusions]) -> dict:
    """What a read showed, for its audit entry: whose conclusions, and where values were withheld."""
    return {"shown": [{"search": i.search_id, "subject": i.subject, "conclusions": [c.id for c in i.conclusions]}
                      for i in items if i.conclusions],
            "withheld": [{"search": i.search_id, "subject": i.subject} for i in items
                         if i.status is not None and not i.conclusions]}
