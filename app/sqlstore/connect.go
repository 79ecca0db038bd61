package sqlstore

import (
	"fmt"
	"time"

	"github.com/pocketbase/dbx"
	_ "modernc.org/sqlite" // the driver PocketBase uses
)

// Page caches. PocketBase gives every connection up to 32 MB of SQLite page cache, and
// its pool of readers grows with concurrent requests: under a burst of webhooks the
// resident memory passed 200 MB, on a box that may have 512 MB. Readers get a small
// cache (the OS keeps the file's pages anyway); the one writer keeps PocketBase's, as
// the hot path's indexes live there.
const (
	ReaderCacheKiB = 4000
	WriterCacheKiB = 16000
)

// Connect opens a PocketBase database (pocketbase.Config.DBConnect) with PocketBase's
// own pragmas (busy_timeout first, WAL, synchronous NORMAL, foreign keys, temp store in
// memory) and the readers' page cache.
func Connect(dbPath string) (*dbx.DB, error) {
	pragmas := "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=journal_size_limit(200000000)" +
		"&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)&_pragma=temp_store(MEMORY)" +
		fmt.Sprintf("&_pragma=cache_size(-%d)", ReaderCacheKiB)
	return dbx.Open("sqlite", dbPath+pragmas)
}

// TuneWriter gives the writer (PocketBase's NonconcurrentDB, one connection) its larger
// page cache and keeps that connection open, so the cache and the prepared statements
// stay warm (PocketBase closes it after 3 idle minutes). Call it before anything
// writes. A writer that is not a *dbx.DB is left alone.
func TuneWriter(writer dbx.Builder) error {
	db, ok := writer.(*dbx.DB)
	if !ok {
		return nil
	}
	db.DB().SetConnMaxIdleTime(time.Duration(0))
	if _, err := db.NewQuery(fmt.Sprintf("PRAGMA cache_size = -%d", WriterCacheKiB)).Execute(); err != nil {
		return fmt.Errorf("writer page cache: %w", err)
	}
	return nil
}
