package intune

// resetSyncFailure is for tests that run several streams in one process.
func resetSyncFailure() {
	outcome.mu.Lock()
	defer outcome.mu.Unlock()
	outcome.err = nil
	completed.syncs.Store(0)
	completed.messages.Store(0)
	completed.apps.Store(0)
	completed.detailsMissing.Clear()
	deadLettered.Store(0)
	tenantsOutcome.mu.Lock()
	tenantsOutcome.rounds, tenantsOutcome.tenants, tenantsOutcome.failures = 0, 0, nil
	tenantsOutcome.mu.Unlock()
}
