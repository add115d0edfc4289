package schema

// SQLiteDSN is the shipped configs' SQLite database at path: WAL, so that
// a reader never blocks the sync, with NORMAL syncs (durable at each
// checkpoint, never corrupt), on SQLite's default 4 KB pages. The device
// and the apps configs share the file (intune.db), so that a query joins
// their tables, and a page size holds for the whole file. Larger pages
// were measured (2026-12-07, bench/RESULTS.md): with 64 KB pages a
// 100,000-device sync into an empty file took 14.3 CPU s and 11.9 s
// instead of 20.5 and 17.5 (a device row, 4 to 6 KB, no longer spills to
// an overflow page), but the apps config's sync of 10,000 devices and
// 1.0 M pairs took 99 s instead of 72 to 79 (16 KB pages: 94 s): each of
// its commits writes whole pages for small rows. A database that holds
// devices only can take them: add _pragma=page_size(65536) to
// INTUNE_SQLITE_DSN, and give the journal mode by its own key
// (_journal_mode=WAL), since modernc runs the _pragma list sorted and WAL
// fixes the page size.
func SQLiteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
}
