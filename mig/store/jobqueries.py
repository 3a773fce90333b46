"""The questions asked of many jobs at once, answered by the job database's
indexes (mig.store.jobdb holds the data and writes it; JobDB inherits these):
counts, pages in several orders, name and date searches, id patterns,
changes since a moment, sweeps, idempotency keys and daily activity."""

import collections
import json

SEARCH_COUNT_LIMIT = 10000  # a name search counts its matches up to this many
SORT_WINDOW = SEARCH_COUNT_LIMIT  # sorted by state or name: the newest this many jobs
ORDERS = ("newest", "oldest", "state", "name")  # the orders of a page of jobs
_SORT_KEYS = {"oldest": "t.seq", "state": "t.state, t.seq DESC", "name": "t.lname, t.seq DESC"}
FTS_FROM = 20000  # jobs of an owner from which name searches use the trigram index


def _glob_literal(text):
    """text as a GLOB pattern that matches exactly it."""
    return "".join("[%s]" % c if c in "*?[" else c for c in text)


# What lists show without loading a record.
Entry = collections.namedtuple("Entry", "job_id state name received changed")


class JobQueries:
    """Read-only questions; needs reader() and owner_numbers from the database."""

    def counts(self, owner):
        no = self.owner_numbers.get(owner)
        if no is None:
            return {}
        with self.reader() as db:
            return dict(db.execute("SELECT state, n FROM counts WHERE owner=?", (no,)))

    def total(self, owner, state=None, archived=False):
        """The number of the owner's jobs (in the hot index, or the archive)."""
        no = self.owner_numbers.get(owner)
        if no is None:
            return 0
        with self.reader() as db:
            def count(table):
                if state is None:
                    return db.execute("SELECT coalesce(sum(n), 0) FROM %s WHERE owner=?"
                                      % table, (no,)).fetchone()[0]
                row = db.execute("SELECT n FROM %s WHERE owner=? AND state=?" % table,
                                 (no, state)).fetchone()
                return row[0] if row else 0
            if archived:
                return count("archived_counts")
            return count("counts") - count("archived_counts")  # counts include the archive

    def page(self, owner, state=None, offset=0, limit=50, order="newest"):
        """Entries of the owner's jobs newest first (or newest to enter state),
        oldest first, or by state or name (of the newest SORT_WINDOW jobs)."""
        no = self.owner_numbers.get(owner)
        if no is None:
            return []
        with self.reader() as db:
            if state is None:
                newest = "SELECT seq FROM jobs WHERE owner=? ORDER BY seq %s"
                args = [no]
            else:
                newest = "SELECT seq FROM jobs WHERE owner=? AND state=? ORDER BY changed %s"
                args = [no, state]
            if order == "oldest":  # the same index read backwards
                seqs = [s for (s,) in db.execute(newest % "ASC" + " LIMIT ? OFFSET ?",
                                                 args + [limit, offset])]
            else:
                seqs = self._sorted_page(db, "jobs", newest % "DESC", args, order, offset,
                                         limit)
            return self._entries(db, "jobs", seqs)

    @staticmethod
    def _sorted_page(db, table, newest, args, order, offset, limit):
        """Seqs of one page of what the query newest selects (newest first), in
        order: any other order sorts the newest SORT_WINDOW of them (bounded)."""
        if order == "newest":
            return [s for (s,) in db.execute(newest + " LIMIT ? OFFSET ?",
                                             args + [limit, offset])]
        return [s for (s,) in db.execute(
            "SELECT t.seq FROM %s AS t WHERE t.seq IN (%s LIMIT %d) ORDER BY %s "
            "LIMIT ? OFFSET ?" % (table, newest, SORT_WINDOW, _SORT_KEYS[order]),
            args + [limit, offset])]

    @staticmethod
    def _entries(db, table, seqs):
        found = {}
        for seq in seqs:
            row = db.execute("SELECT job_id, state, name, received, changed FROM %s "
                             "WHERE seq=?" % table, (seq,)).fetchone()
            if row is not None:
                found[seq] = Entry(*row)
        return [found[s] for s in seqs if s in found]

    def search(self, owner, text="", since=None, until=None, state=None, offset=0, limit=50,
               archived=False, order="newest"):
        """(number matched, entries of one page) of the owner's jobs received in
        [since, until) whose lower-case "name<TAB>id" contains text, newest first
        (or in another of ORDERS: state and name, and any order of a trigram
        search, sort the newest SORT_WINDOW matches).
        The count stops at SEARCH_COUNT_LIMIT + 1.  An owner with few jobs is
        searched in the covering list index; one with many, through the
        trigram index of names (never the records)."""
        no = self.owner_numbers.get(owner)
        if no is None:
            return 0, []
        table = "archive" if archived else "jobs"
        where, args = ["t.owner=?"], [no]
        if text:
            where.append("instr(t.lname, ?) > 0")
            args.append(text.lower())
        if since is not None:
            where.append("t.received >= ?")
            args.append(since)
        if until is not None:
            where.append("t.received < ?")
            args.append(until)
        if state:
            where.append("t.state=?")
            args.append(state)
        clause = " AND ".join(where)
        trigrams = not archived and len(text) >= 3 and self.total(owner) >= FTS_FROM
        with self.reader() as db:
            if not trigrams:
                matched = self._count_matches(db, "%s AS t" % table, clause, args)
                newest = "SELECT t.seq FROM %s AS t WHERE %s ORDER BY t.seq %%s" % (table, clause)
                if order == "oldest":
                    seqs = [s for (s,) in db.execute(newest % "ASC" + " LIMIT ? OFFSET ?",
                                                     args + [limit, offset])]
                else:
                    seqs = self._sorted_page(db, table, newest % "DESC", args, order, offset,
                                             limit)
                return matched, self._entries(db, table, seqs)
            # Many jobs: candidates from the trigram index, newest first in its
            # own order (a page needs no sort), each checked exactly; the jobs
            # stored since the index was last brought up to date are scanned.
            upto = self.names_upto(db)
            recent = [s for (s,) in db.execute(
                "SELECT t.seq FROM jobs AS t WHERE %s AND t.seq > ? ORDER BY t.seq DESC"
                % clause, args + [upto])]
            source = "names CROSS JOIN jobs AS t ON t.seq = names.rowid"
            indexed = clause + " AND names.lname GLOB ? AND names.rowid <= ?"
            more = args + ["*%s*" % _glob_literal(text.lower()), upto]
            matched = len(recent) + self._count_matches(db, source, indexed, more)
            if order != "newest":  # sort the newest SORT_WINDOW candidates
                window = recent[:SORT_WINDOW] + [s for (s,) in db.execute(
                    "SELECT t.seq FROM %s WHERE %s ORDER BY names.rowid DESC LIMIT ?"
                    % (source, indexed), more + [max(0, SORT_WINDOW - len(recent))])]
                seqs = [s for (s,) in db.execute(
                    "SELECT t.seq FROM jobs AS t WHERE t.seq IN (SELECT value FROM "
                    "json_each(?)) ORDER BY %s LIMIT ? OFFSET ?" % _SORT_KEYS[order],
                    (json.dumps(window), limit, offset))]
                return matched, self._entries(db, table, seqs)
            seqs = recent[offset:offset + limit]
            if len(seqs) < limit:
                seqs += [s for (s,) in db.execute(
                    "SELECT t.seq FROM %s WHERE %s ORDER BY names.rowid DESC LIMIT ? OFFSET ?"
                    % (source, indexed),
                    more + [limit - len(seqs), max(0, offset - len(recent))])]
            return matched, self._entries(db, table, seqs)

    @staticmethod
    def _count_matches(db, source, clause, args):
        """Matches, counted up to SEARCH_COUNT_LIMIT + 1."""
        return db.execute("SELECT count(*) FROM (SELECT 1 FROM %s WHERE %s LIMIT ?)"
                          % (source, clause), args + [SEARCH_COUNT_LIMIT + 1]).fetchone()[0]

    def seqs(self, owner, low=None, high=None, limit=None, archived=False):
        """The owner's job seqs in [low, high), oldest first, at most limit."""
        no = self.owner_numbers.get(owner)
        if no is None:
            return []
        table = "archive" if archived else "jobs"
        query, args = "SELECT seq FROM %s WHERE owner=?" % table, [no]
        if low is not None:
            query, args = query + " AND seq >= ?", args + [low]
        if high is not None:
            query, args = query + " AND seq < ?", args + [high]
        query += " ORDER BY seq"
        if limit is not None:
            query, args = query + " LIMIT ?", args + [limit]
        with self.reader() as db:
            return [s for (s,) in db.execute(query, args)]

    def glob(self, owner, pattern, seq=None):
        """[(seq, job_id)] of the owner's jobs whose id matches a glob pattern
        (fnmatch's syntax), oldest first; only job seq when given."""
        no = self.owner_numbers.get(owner)
        if no is None:
            return []
        sql_pattern = pattern.replace("[!", "[^")
        found = []
        for table in ("archive", "jobs"):
            query, args = "SELECT seq, job_id FROM %s WHERE owner=? AND job_id GLOB ?" \
                % table, [no, sql_pattern]
            if seq is not None:
                query, args = query + " AND seq=?", args + [seq]
            with self.reader() as db:
                found += db.execute(query + " ORDER BY seq", args).fetchall()
        return sorted(found)

    def ids(self, seqs, archived=False):
        """{seq: (job_id, state, project, changed)} for the given seqs."""
        table = "archive" if archived else "jobs"
        project = "NULL" if archived else "project"
        found = {}
        with self.reader() as db:
            for seq in seqs:
                row = db.execute("SELECT job_id, state, %s, changed FROM %s WHERE seq=?"
                                 % (project, table), (seq,)).fetchone()
                if row is not None:
                    found[seq] = row
        return found

    def changed_since(self, owner, since, limit):
        """[(job_id, state, changed)] of the owner's jobs changed after since,
        oldest change first, at most limit."""
        no = self.owner_numbers.get(owner)
        if no is None:
            return []
        with self.reader() as db:
            return db.execute("SELECT job_id, state, changed FROM jobs WHERE owner=? AND "
                              "changed > ? ORDER BY changed LIMIT ?",
                              (no, since, limit)).fetchall()

    def sweep_counts(self, sweep):
        with self.reader() as db:
            return {state: n for state, n in db.execute(
                "SELECT state, n FROM sweep_counts WHERE sweep=?", (sweep,)) if n}

    def sweep_job_ids(self, sweep):
        with self.reader() as db:
            return [j for (j,) in db.execute(
                "SELECT job_id FROM jobs WHERE sweep=? ORDER BY seq", (sweep,))]

    def by_idempotency(self, owner, key):
        no = self.owner_numbers.get(owner)
        if no is None:
            return None
        with self.reader() as db:
            row = db.execute("SELECT job_id FROM jobs WHERE owner=? AND idem=?",
                             (no, key)).fetchone()
        return row[0] if row else None

    def activity(self, owner, first_day, last_day):
        no = self.owner_numbers.get(owner)
        if no is None:
            return {}
        with self.reader() as db:
            return {day: (s, f) for day, s, f in db.execute(
                "SELECT day, submitted, finished FROM activity WHERE owner=? AND day "
                "BETWEEN ? AND ?", (no, first_day, last_day))}

    def quarantined(self):
        """[(job_id, owner, reason, at)] of the damaged records set aside."""
        with self.reader() as db:
            return db.execute("SELECT job_id, owner, reason, at FROM quarantine "
                              "ORDER BY at").fetchall()
