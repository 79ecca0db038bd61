package benchmark

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the driver PocketBase itself uses, registered as "sqlite"
)

// ceilingPragmas are the settings PocketBase opens its data.db with that matter for
// writes: WAL, synchronous=NORMAL, and the same busy timeout and cache.
const ceilingPragmas = "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)" +
	"&_pragma=temp_store(MEMORY)&_pragma=cache_size(-32000)"

// CeilingResult is the rate of plain inserts into a bare SQLite table: what "store,
// then answer" could reach if storing were all a delivery cost.
type CeilingResult struct {
	Rows    int
	Elapsed time.Duration
}

// PerSecond is rows inserted per second.
func (c CeilingResult) PerSecond() float64 { return rate(c.Rows, c.Elapsed) }

// measureCeiling inserts each payload as one row, one transaction per row, through a
// single connection of modernc.org/sqlite into a fresh file in dir.
func measureCeiling(ctx context.Context, dir string, payloads [][]byte) (CeilingResult, error) {
	path := filepath.Join(dir, "ceiling.db")
	defer func() {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(path + suffix)
		}
	}()
	db, err := sql.Open("sqlite", "file:"+path+ceilingPragmas)
	if err != nil {
		return CeilingResult{}, fmt.Errorf("ceiling: open %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)

	if _, err := db.ExecContext(ctx, `CREATE TABLE deliveries (
		id INTEGER PRIMARY KEY, webhook_id TEXT NOT NULL, payload TEXT NOT NULL, received_at TEXT NOT NULL)`); err != nil {
		return CeilingResult{}, fmt.Errorf("ceiling: create table: %w", err)
	}
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		return CeilingResult{}, fmt.Errorf("ceiling: journal mode is %q, want wal (%v)", mode, err)
	}
	stmt, err := db.PrepareContext(ctx, `INSERT INTO deliveries (webhook_id, payload, received_at) VALUES (?, ?, ?)`)
	if err != nil {
		return CeilingResult{}, fmt.Errorf("ceiling: prepare: %w", err)
	}
	defer stmt.Close()

	started := time.Now()
	for i, p := range payloads {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return CeilingResult{}, fmt.Errorf("ceiling: begin row %d: %w", i, err)
		}
		if _, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, fmt.Sprintf("ceiling-%d", i), string(p),
			time.Now().UTC().Format("2006-01-02 15:04:05.000Z")); err != nil {
			tx.Rollback()
			return CeilingResult{}, fmt.Errorf("ceiling: insert row %d: %w", i, err)
		}
		if err := tx.Commit(); err != nil {
			return CeilingResult{}, fmt.Errorf("ceiling: commit row %d: %w", i, err)
		}
	}
	return CeilingResult{Rows: len(payloads), Elapsed: time.Since(started)}, nil
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
