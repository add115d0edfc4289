package intune

import (
	"context"
	"errors"
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
