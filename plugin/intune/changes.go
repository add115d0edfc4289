package intune

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/intune-benthos/intune-benthos/plugin/graph"
)

// Operations, in the intune_operation metadata field.
const (
	opUpsert       = "upsert"
	opDelete       = "delete"
	opSyncStarted  = "sync_started"
	opSyncComplete = "sync_completed"
)

// Boxed once: every message's metadata shares these values.
var (
	opUpsertMeta       any = opUpsert
	opDeleteMeta       any = opDelete
	opSyncStartedMeta  any = opSyncStarted
	opSyncCompleteMeta any = opSyncComplete
	noPageMeta         any = 0
)

// changeTracker follows one sync against the previous complete one.
type changeTracker struct {
	fp       fingerprinter
	previous *snapshot // nil on the first sync: everything is new
	current  *snapshot
	onlyNew  bool // emit: changes
	// partial: the sync resumed from a checkpoint, so this process did not
	// see its first pages. It may not name deletions or become the snapshot.
	partial bool
	upserts int
}

func newChangeTracker(fp fingerprinter, previous *snapshot, onlyChanges, partial bool) *changeTracker {
	capacity := 1024
	if previous != nil {
		capacity = previous.len() + previous.len()/8
	}
	return &changeTracker{fp: fp, previous: previous, current: newSnapshot(capacity), onlyNew: onlyChanges, partial: partial}
}

// observe records a page's devices and returns the indexes of those to
// emit, with their ids: all of them, or with emit: changes only the new and
// the changed ones.
func (c *changeTracker) observe(page int, devices [][]byte) ([]int, []any, error) {
	keep := make([]int, 0, len(devices))
	ids := make([]any, 0, len(devices))
	for i, d := range devices {
		id, hash, err := c.fp.fingerprint(d)
		if err != nil {
			return nil, nil, fmt.Errorf("page %d, device %d: %w", page, i+1, err)
		}
		c.current.put(id, hash)
		if c.onlyNew && c.previous != nil {
			if old, ok := c.previous.get(id); ok && old == hash {
				continue
			}
		}
		keep = append(keep, i)
		ids = append(ids, id)
	}
	c.upserts += len(keep)
	return keep, ids, nil
}

// deletions returns a tombstone for each device of the previous complete
// sync that this one did not list, with their ids. Only a sync that read
// every page may call it.
func (c *changeTracker) deletions() ([][]byte, []any) {
	if c.previous == nil || c.partial {
		return nil, nil
	}
	gone := c.previous.missingFrom(c.current)
	tombstones := make([][]byte, len(gone))
	ids := make([]any, len(gone))
	for i, id := range gone {
		tombstones[i], ids[i] = tombstone(id), id
	}
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

// tombstone is the body of a deletion, in the shape Graph's delta queries
// use for removed items.
func tombstone(id string) []byte {
	idJSON, _ := json.Marshal(id)
	return []byte(`{"id":` + string(idJSON) + `,"@removed":{"reason":"deleted"}}`)
}
