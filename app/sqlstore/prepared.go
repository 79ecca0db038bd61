package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pocketbase/dbx"
)

// Prepared statements for the hot write path.
//
// dbx parses every statement with a regular expression and has SQLite prepare it
// anew on every call, which costs more than running a small statement. A Statements
// set keeps each statement prepared on PocketBase's writer connection for the life of
// the process, and a transaction opened with Begin runs them through that
// transaction. A statement first seen inside a transaction cannot be prepared on the
// writer there (the writer has one connection, which the transaction holds): it is
// prepared for that transaction only and remembered, and PrepareSeen prepares it on
// the writer before the next transaction starts.

// maxStatements bounds a Statements set; statements past it are prepared per
// transaction, as dbx would, so a caller building SQL from varying input cannot grow it
// without end.
const maxStatements = 256

// statement is SQL written with dbx's {:name} placeholders, converted once to the
// driver's ? form.
type statement struct {
	text  string   // as written, which is what the query log shows
	raw   string   // with ? placeholders
	names []string // the parameter bound to each ?
}

func parseStatement(text string) *statement {
	s := &statement{text: text}
	var raw strings.Builder
	rest := text
	for {
		start := strings.Index(rest, "{:")
		if start < 0 {
			break
		}
		end := strings.IndexByte(rest[start:], '}')
		if end < 0 {
			break
		}
		raw.WriteString(rest[:start])
		raw.WriteByte('?')
		s.names = append(s.names, rest[start+2:start+end])
		rest = rest[start+end+1:]
	}
	raw.WriteString(rest)
	s.raw = raw.String()
	return s
}

// args orders params as the statement's placeholders need them.
func (s *statement) args(params dbx.Params) ([]any, error) {
	args := make([]any, len(s.names))
	for i, name := range s.names {
		v, ok := params[name]
		if !ok {
			return nil, fmt.Errorf("named parameter not found: %s", name)
		}
		args[i] = v
	}
	return args, nil
}

// Statements is a process-wide set of statements prepared on one writer *sql.DB.
// The zero value is ready to use.
type Statements struct {
	mu       sync.Mutex
	writer   *sql.DB
	byText   map[string]*statement
	prepared map[*statement]*sql.Stmt // on writer, shared by its transactions
	seen     []*statement             // used inside a transaction, not yet on writer
}

func (ss *Statements) lookup(text string) (*statement, *sql.Stmt) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s, ok := ss.byText[text]; ok {
		return s, ss.prepared[s]
	}
	s := parseStatement(text)
	if len(ss.byText) < maxStatements {
		if ss.byText == nil {
			ss.byText = map[string]*statement{}
		}
		ss.byText[text] = s
		ss.seen = append(ss.seen, s)
	}
	return s, nil
}

// PrepareSeen prepares on writer (PocketBase's NonconcurrentDB) the statements
// transactions have used since the last call. Call it outside any transaction on
// writer: it needs the writer's connection. A writer that is not a *dbx.DB (already a
// transaction) is left alone, and a statement that fails to prepare stays prepared per
// transaction (where its error shows).
func (ss *Statements) PrepareSeen(writer dbx.Builder) {
	db, ok := writer.(*dbx.DB)
	if !ok {
		return
	}
	pending := ss.takeSeen(db.DB())
	if len(pending) == 0 {
		return
	}
	// not under ss.mu: Prepare waits for the writer's connection, and the transaction
	// holding it may be looking a statement up
	prepared := make(map[*statement]*sql.Stmt, len(pending))
	for _, s := range pending {
		if stmt, err := db.DB().Prepare(s.raw); err == nil {
			prepared[s] = stmt
		}
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for s, stmt := range prepared {
		if ss.writer != db.DB() || ss.prepared[s] != nil {
			stmt.Close() // another worker was quicker, or the database changed meanwhile
			continue
		}
		ss.prepared[s] = stmt
	}
}

// takeSeen returns the statements to prepare on writer and forgets them.
func (ss *Statements) takeSeen(writer *sql.DB) []*statement {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.writer != writer {
		// a new database (the app was bootstrapped again): start over
		ss.closeLocked()
		ss.writer, ss.prepared = writer, map[*statement]*sql.Stmt{}
		ss.seen = ss.seen[:0]
		for _, s := range ss.byText {
			ss.seen = append(ss.seen, s)
		}
	}
	pending := ss.seen
	ss.seen = nil
	return pending
}

// Close closes the statements prepared on the writer.
func (ss *Statements) Close() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.closeLocked()
}

func (ss *Statements) closeLocked() {
	for _, stmt := range ss.prepared {
		stmt.Close()
	}
	ss.writer, ss.prepared = nil, nil
}

// Begin wraps a transaction's builder (txApp.DB()) so that Exec, QueryRow, Insert and
// Update through it use ss's prepared statements. Every other dbx call goes to the
// transaction unchanged. A builder that is not a dbx transaction is returned as is.
func (ss *Statements) Begin(txBuilder dbx.Builder) dbx.Builder {
	tx, ok := txBuilder.(*dbx.Tx)
	if !ok {
		return txBuilder
	}
	inner, ok := tx.Builder.(interface {
		DB() *dbx.DB
		Executor() dbx.Executor
	})
	if !ok {
		return txBuilder
	}
	sqlTx, ok := inner.Executor().(*sql.Tx)
	if !ok {
		return txBuilder
	}
	return &PreparedTx{Builder: txBuilder, set: ss, tx: sqlTx, log: inner.DB(), bound: map[*statement]*sql.Stmt{}}
}

// PreparedTx is a transaction's builder with prepared statements; Begin makes one.
type PreparedTx struct {
	dbx.Builder
	set   *Statements
	tx    *sql.Tx
	log   *dbx.DB // whose QueryLogFunc and ExecLogFunc see every statement, as with dbx
	bound map[*statement]*sql.Stmt
}

// stmt returns the transaction's copy of the statement with this text.
func (p *PreparedTx) stmt(text string) (*statement, *sql.Stmt, error) {
	s, shared := p.set.lookup(text)
	if st, ok := p.bound[s]; ok {
		return s, st, nil
	}
	var st *sql.Stmt
	if shared != nil {
		st = p.tx.Stmt(shared) // reuses the writer connection's prepared statement
	} else {
		var err error
		if st, err = p.tx.Prepare(s.raw); err != nil {
			return s, nil, err
		}
	}
	p.bound[s] = st
	return s, st, nil
}

// Exec runs a statement written with {:name} placeholders.
func (p *PreparedTx) Exec(text string, params dbx.Params) (sql.Result, error) {
	s, st, err := p.stmt(text)
	if err != nil {
		return nil, err
	}
	args, err := s.args(params)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	res, err := st.Exec(args...)
	if p.log.ExecLogFunc != nil {
		p.log.ExecLogFunc(context.Background(), time.Since(start), logSQL(text, params), res, err)
	}
	return res, err
}

// QueryRow runs a query written with {:name} placeholders and scans its first row
// into dest; no row is sql.ErrNoRows.
func (p *PreparedTx) QueryRow(text string, params dbx.Params, dest ...any) error {
	s, st, err := p.stmt(text)
	if err != nil {
		return err
	}
	args, err := s.args(params)
	if err != nil {
		return err
	}
	start := time.Now()
	rows, err := st.Query(args...)
	if p.log.QueryLogFunc != nil {
		p.log.QueryLogFunc(context.Background(), time.Since(start), logSQL(text, params), rows, err)
	}
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Close()
}

// Exec runs a statement written with {:name} placeholders: prepared once when db is a
// PreparedTx, through dbx otherwise.
func Exec(db dbx.Builder, text string, params dbx.Params) (sql.Result, error) {
	if p, ok := db.(*PreparedTx); ok {
		return p.Exec(text, params)
	}
	return db.NewQuery(text).Bind(params).Execute()
}

// QueryRow scans the first row of a query written with {:name} placeholders into
// dest (sql.ErrNoRows when there is none): prepared once when db is a PreparedTx,
// through dbx otherwise.
func QueryRow(db dbx.Builder, text string, params dbx.Params, dest ...any) error {
	if p, ok := db.(*PreparedTx); ok {
		return p.QueryRow(text, params, dest...)
	}
	return db.NewQuery(text).Bind(params).Row(dest...)
}

// insertSQL is the INSERT dbx builds for cols, in the same column order.
func insertSQL(table string, cols dbx.Params) (string, dbx.Params) {
	names := sortedKeys(cols)
	var b strings.Builder
	b.WriteString("INSERT INTO `" + table + "` (")
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("`" + n + "`")
	}
	b.WriteString(") VALUES (")
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("{:" + n + "}")
	}
	b.WriteString(")")
	return b.String(), cols
}

// updateSQL is the UPDATE of cols on the row with this id. The id is bound as
// {:_id}, which no column is called.
func updateSQL(table, id string, cols dbx.Params) (string, dbx.Params) {
	names := sortedKeys(cols)
	var b strings.Builder
	b.WriteString("UPDATE `" + table + "` SET ")
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("`" + n + "`={:" + n + "}")
	}
	b.WriteString(" WHERE `id`={:_id}")
	params := make(dbx.Params, len(cols)+1)
	for k, v := range cols {
		params[k] = v
	}
	params["_id"] = id
	return b.String(), params
}

// preparable says whether cols can be written with plain placeholders (no dbx
// expressions among the values, no column name a placeholder cannot carry).
func preparable(cols dbx.Params) bool {
	for k, v := range cols {
		if _, isExp := v.(dbx.Expression); isExp || k == "_id" || strings.ContainsAny(k, "{}`") {
			return false
		}
	}
	return true
}

func sortedKeys(m dbx.Params) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// logSQL renders a statement with its values in place, for the query log only; it is
// what dbx's own log shows.
func logSQL(text string, params dbx.Params) string {
	s := text
	for k, v := range params {
		if valuer, ok := v.(driver.Valuer); ok && valuer != nil {
			v, _ = valuer.Value()
		}
		var sv string
		switch x := v.(type) {
		case string:
			sv = "'" + strings.ReplaceAll(x, "'", "''") + "'"
		case []byte:
			sv = "0x" + hex.EncodeToString(x)
		default:
			sv = fmt.Sprintf("%v", v)
		}
		s = strings.ReplaceAll(s, "{:"+k+"}", sv)
	}
	return s
}
