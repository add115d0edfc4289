package intune

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/benthosdev/benthos/v4/public/service"
)

// cacheGet, cacheSet and cacheDelete are one operation on a cache
// resource, its access error and its own error as one.
func cacheGet(ctx context.Context, res *service.Resources, cache, key string) ([]byte, error) {
	var raw []byte
	var opErr error
	err := res.AccessCache(ctx, cache, func(c service.Cache) { raw, opErr = c.Get(ctx, key) })
	if err == nil {
		err = opErr
	}
	return raw, err
}

func cacheSet(ctx context.Context, res *service.Resources, cache, key string, value []byte) error {
	var opErr error
	err := res.AccessCache(ctx, cache, func(c service.Cache) { opErr = c.Set(ctx, key, value, nil) })
	if err == nil {
		err = opErr
	}
	return err
}

// cacheAdd sets key only if the cache holds none: an error otherwise
// (Benthos' ErrKeyAlreadyExists, or the database's own).
func cacheAdd(ctx context.Context, res *service.Resources, cache, key string, value []byte) error {
	var opErr error
	err := res.AccessCache(ctx, cache, func(c service.Cache) { opErr = c.Add(ctx, key, value, nil) })
	if err == nil {
		err = opErr
	}
	return err
}

func cacheDelete(ctx context.Context, res *service.Resources, cache, key string) error {
	var opErr error
	err := res.AccessCache(ctx, cache, func(c service.Cache) { opErr = c.Delete(ctx, key) })
	if err == nil {
		err = opErr
	}
	return err
}

// keyMissing tells an error saying the cache holds no such key: Benthos'
// ErrKeyNotFound, or the file system's, which the file cache reports.
func keyMissing(err error) bool {
	return errors.Is(err, service.ErrKeyNotFound) || errors.Is(err, fs.ErrNotExist)
}

// cacheWritable writes, reads back and deletes a small value under key,
// so that a cache no sync could save to is found before the sync, not
// after hours of it: a file cache's directory that does not exist, a
// read-only database, a wrong DSN.
func cacheWritable(ctx context.Context, res *service.Resources, field, cache, key string) error {
	probe := []byte("intune-benthos checks that this cache can be written")
	err := cacheSet(ctx, res, cache, key, probe)
	if err == nil {
		var back []byte
		if back, err = cacheGet(ctx, res, cache, key); err == nil && string(back) != string(probe) {
			err = fmt.Errorf("it gave back %d bytes for the %d written", len(back), len(probe))
		}
	}
	if err == nil {
		err = cacheDelete(ctx, res, cache, key)
	}
	if err == nil {
		return nil
	}
	hint := ""
	if errors.Is(err, fs.ErrNotExist) {
		hint = " (a file cache whose directory does not exist?)"
	}
	return fmt.Errorf("%s: cache %q cannot be written%s, so the sync would not be saved: key %q: %w", field, cache, hint, key, err)
}

// The key a store's cacheWritable writes, beside what it keeps.
const probeKeySuffix = "_probe"

func (s *stateStore) writable(ctx context.Context) error {
	if s == nil {
		return nil
	}
	return cacheWritable(ctx, s.res, fieldStateCache, s.cache, s.key+probeKeySuffix)
}

func (s *appsStateStore) writable(ctx context.Context) error {
	if s == nil {
		return nil
	}
	return cacheWritable(ctx, s.chunks.res, fieldStateCache, s.chunks.cache, s.chunks.key+probeKeySuffix)
}

func (s *checkpointStore) writable(ctx context.Context) error {
	if s == nil {
		return nil
	}
	return cacheWritable(ctx, s.res, fieldCheckpointCache, s.cache, s.key+probeKeySuffix)
}
