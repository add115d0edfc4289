package schema

// SQLiteDSN is the shipped configs' SQLite database at path: WAL, so that
// a reader never blocks the sync, with NORMAL syncs (durable at each
// checkpoint, never corrupt), and 64 KB pages. A device row with its
// computed columns is 4 to 6 KB: on SQLite's default 4 KB pages most rows
// spill to an overflow page. With 64 KB pages a 100,000-device sync into
// an empty file took 14.3 CPU s and 11.9 s here, against 20.5 CPU s and
// 17.5 s (the file 506 MB, not 600); a sync that updates every row cost
// the same. modernc applies _pragma values in alphabetical order, and the
// page size only holds while the file is new: journal mode goes last, by
// its own key.
func SQLiteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=page_size(65536)&_pragma=synchronous(NORMAL)&_journal_mode=WAL"
}
