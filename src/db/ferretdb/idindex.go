package main

// FerretDB 1.24's SQLite backend pushes a find, update or delete whose filter
// is only {_id: <string or ObjectId>} down to SQLite as
//
//	WHERE _ferretdb_sjson->'$._id' = ?
//
// but the unique index it creates for _id is on the expression
// _ferretdb_sjson->"_id". SQLite uses an expression index only for the
// same expression, so every _id lookup scans the whole table (EXPLAIN QUERY
// PLAN: "SCAN <table>"), and the cost of a read by _id grows with the
// collection.
//
// This file adds, to every collection table, a plain (non-unique) index on
// exactly the pushed-down expression, so those lookups become index searches
// ("SEARCH <table> USING INDEX <table>_abhavault_id_path"). SQLite keeps the
// index up to date on every insert, update and delete; FerretDB keeps
// enforcing _id uniqueness with its own index and never sees this one (it
// lists indexes from its own metadata), and dropping a collection drops it.
//
// Existing tables are indexed before FerretDB starts serving; tables created
// later (a new collection) are found by a poll of the data directory.

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the SQLite driver FerretDB itself uses
)

const idIndexSuffix = "_abhavault_id_path"

// idPathIndexer remembers, per database file, the modification time it last
// checked, so a poll opens only files that have changed.
type idPathIndexer struct {
	dir     string
	checked map[string]time.Time
	warn    func(error)
}

func newIDPathIndexer(dir string, warn func(error)) *idPathIndexer {
	return &idPathIndexer{dir: dir, checked: map[string]time.Time{}, warn: warn}
}

// pass indexes every collection table that lacks the index, in every
// database file whose main or WAL file changed since the last pass.
func (x *idPathIndexer) pass(ctx context.Context) {
	files, err := filepath.Glob(filepath.Join(x.dir, "*.sqlite"))
	if err != nil {
		x.warn(err)
		return
	}
	seen := make(map[string]bool, len(files))
	for _, f := range files {
		seen[f] = true
		m := latestModTime(f, f+"-wal")
		if last, ok := x.checked[f]; ok && !m.After(last) {
			continue
		}
		if err := ensureIDPathIndexes(ctx, f); err != nil {
			x.warn(fmt.Errorf("%s: %w", filepath.Base(f), err))
			continue
		}
		x.checked[f] = m
	}
	for f := range x.checked {
		if !seen[f] {
			delete(x.checked, f) // a dropped database
		}
	}
}

// run polls until ctx ends.
func (x *idPathIndexer) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			x.pass(ctx)
		}
	}
}

func latestModTime(paths ...string) time.Time {
	var m time.Time
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && st.ModTime().After(m) {
			m = st.ModTime()
		}
	}
	return m
}

func ensureIDPathIndexes(ctx context.Context, file string) error {
	// busy_timeout as FerretDB's own connections have it: DDL waits for a writer rather than failing.
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	// Only tables that lack the index are touched: a CREATE INDEX, even IF NOT EXISTS, is a write to the schema,
	// and one per table every pass kept FerretDB's own writers waiting under load.
	rows, err := db.QueryContext(ctx, `SELECT type, name FROM sqlite_master WHERE type IN ('table', 'index')`)
	if err != nil {
		return err
	}
	var all []string
	indexed := map[string]bool{}
	for rows.Next() {
		var kind, name string
		if err := rows.Scan(&kind, &name); err != nil {
			rows.Close()
			return err
		}
		if kind == "index" {
			indexed[name] = true
			continue
		}
		if strings.HasPrefix(name, "_ferretdb_") || strings.HasPrefix(name, "sqlite_") {
			continue // FerretDB's metadata table, SQLite's own
		}
		all = append(all, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var tables []string
	for _, t := range all {
		if !indexed[t+idIndexSuffix] {
			tables = append(tables, t)
		}
	}

	for _, t := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, t+idIndexSuffix, t)
		if _, err := db.ExecContext(ctx, q); err != nil {
			if strings.Contains(err.Error(), "no such table") {
				continue // dropped between the listing and now
			}
			return err
		}
	}
	return nil
}
