package intune

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/intune-benthos/intune-benthos/plugin/graph"
	"github.com/intune-benthos/intune-benthos/plugin/intune/contract"
)

// Boxed once: every message's metadata shares these values.
var (
	opUpsertMeta       any = contract.OpUpsert
	opDeleteMeta       any = contract.OpDelete
	opSyncStartedMeta  any = contract.OpSyncStarted
	opSyncCompleteMeta any = contract.OpSyncCompleted
	noPageMeta         any = 0
)

// changeTracker follows one sync against the state of the previous
// complete one, and writes this sync's state as its pages are handed on.
type changeTracker struct {
	fp       fingerprinter
	previous *deviceState // empty on a first sync: everything is new
	// writer writes this sync's state; nil when it has none to write (a
	// resumed sync without details keeps the previous state as it is).
	writer  *deviceStateWriter
	onlyNew bool // emit: changes
	// partial: the sync resumed from a checkpoint, so this process did not
	// see its first pages. It may not name deletions, and its state keeps
	// the previous hashes (it adds the details it knows).
	partial bool
	upserts int
	// present is, for a resumed sync that listed every id again, the ids
	// the collection holds now (lower-cased): what its deletions are named
	// against, the pages read before the checkpoint included.
	present map[string]struct{}
}

func newChangeTracker(fp fingerprinter, previous *deviceState, writer *deviceStateWriter, onlyChanges, partial bool) *changeTracker {
	return &changeTracker{fp: fp, previous: previous, writer: writer, onlyNew: onlyChanges, partial: partial}
}

// observe records a page's devices, with their details when pd is not nil
// (pd.records and pd.known as emitted), and returns the indexes of those
// to emit, with their ids: all of them, or with emit: changes only the new
// and the changed ones.
func (c *changeTracker) observe(ctx context.Context, page int, devices [][]byte, pd *pageDetails) ([]int, []any, error) {
	keep := make([]int, 0, len(devices))
	ids := make([]any, 0, len(devices))
	for i, d := range devices {
		id, hash, err := c.fp.fingerprint(d)
		if err != nil {
			return nil, nil, fmt.Errorf("page %d, device %d: %w", page, i+1, err)
		}
		old := c.previous.see(id)
		if c.writer != nil {
			var rec *detailsRecord
			if pd != nil && pd.known[i] {
				rec = &pd.records[i]
			}
			stored, hasHash := hash, true
			if c.partial {
				stored, hasHash = 0, false
				if old != nil && old.hasHash() {
					stored, hasHash = old.hash(), true
				}
			}
			if err := c.writer.device(ctx, id, stored, hasHash, rec); err != nil {
				return nil, nil, err
			}
		}
		if c.onlyNew && old != nil && old.hasHash() && old.hash() == hash {
			continue
		}
		keep = append(keep, i)
		ids = append(ids, id)
	}
	c.upserts += len(keep)
	return keep, ids, nil
}

// keepUnlisted writes, for a resumed sync, what the previous state holds
// of every device this process did not list: its hash and its details
// (read in the order they are stored, so that each chunk is read once).
// Details that cannot be read are left out, and told to lost: they are
// fetched again.
func (c *changeTracker) keepUnlisted(ctx context.Context, lost func(error)) error {
	if c.writer == nil || !c.partial {
		return nil
	}
	type unlisted struct {
		e  *deviceEntry
		id string
	}
	var todo []unlisted
	c.previous.each(func(e *deviceEntry, id string, seen bool) {
		if !seen && !c.deleted(e, id) {
			todo = append(todo, unlisted{e, id})
		}
	})
	slices.SortFunc(todo, func(a, b unlisted) int {
		return cmp.Or(cmp.Compare(a.e.source(), b.e.source()), cmp.Compare(a.e.off, b.e.off))
	})
	for _, u := range todo {
		var rec *detailsRecord
		if u.e.hasDetails() {
			r, ok, err := c.previous.details(ctx, u.e)
			if err != nil {
				lost(err)
			}
			if ok {
				rec = &r
			}
		}
		if err := c.writer.device(ctx, idOf(u.e, u.id), u.e.hash(), u.e.hasHash(), rec); err != nil {
			return err
		}
	}
	return nil
}

// deleted tells whether a device of the previous snapshot that this
// process did not list is known to be gone: a resumed sync knows it only
// once it listed every id again.
func (c *changeTracker) deleted(e *deviceEntry, id string) bool {
	if c.present == nil {
		return false
	}
	_, ok := c.present[strings.ToLower(idOf(e, id))]
	return !ok
}

// deletions returns a tombstone for each device of the previous complete
// sync that this one did not list, with their ids. Only a sync that read
// every page, or a resumed one that listed every id again, may call it.
func (c *changeTracker) deletions() ([][]byte, []any) {
	if c.partial && c.present == nil {
		return nil, nil
	}
	var tombstones [][]byte
	var ids []any
	c.previous.each(func(e *deviceEntry, id string, seen bool) {
		if e.hasHash() && !seen && (!c.partial || c.deleted(e, id)) {
			id = idOf(e, id)
			tombstones, ids = append(tombstones, contract.Tombstone(id)), append(ids, id)
		}
	})
	return tombstones, ids
}

// deviceIDs returns each device's id for its metadata, or nil where a
// device has none. Graph writes "id" first, which the fast path reads
// without walking the object.
func deviceIDs(devices [][]byte) []any {
	ids := make([]any, len(devices))
	for i, d := range devices {
		if id, ok := leadingID(d); ok {
			ids[i] = id
			continue
		}
		_ = graph.EachMember(d, func(key []byte, escaped bool, value []byte) {
			if !escaped && string(key) == "id" && ids[i] == nil {
				if id, err := graph.DecodeString(value); err == nil {
					ids[i] = id
				}
			}
		})
	}
	return ids
}

// leadingID reads a device that starts with {"id":"...", an id without
// escapes.
func leadingID(d []byte) (string, bool) {
	const prefix = `{"id":"`
	if !bytes.HasPrefix(d, []byte(prefix)) {
		return "", false
	}
	rest := d[len(prefix):]
	end := bytes.IndexByte(rest, '"')
	if end <= 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return "", false
	}
	return string(rest[:end]), true
}
