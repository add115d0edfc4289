package intune

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// storeKey is the cache key of what a store keeps for one query: readable,
// safe as a file name (the file cache uses keys as names), and distinct per
// tenant and query (firstURL: graph URL, version, select, filter, page
// size), so that two inputs sharing a cache, or an edited filter, never
// read each other's checkpoint or snapshot.
func storeKey(prefix, scope, firstURL string) string {
	sum := sha256.Sum256([]byte(firstURL))
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, scope)
	return prefix + safe + "_" + hex.EncodeToString(sum[:6])
}
