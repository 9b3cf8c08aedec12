package intake

import (
	"sync"
	"testing"
)

// HoldCommits makes every group commit slot busy, so that the calls made
// meanwhile queue up; release lets them through (once, and at the end of
// the test at the latest).
func HoldCommits(t testing.TB, c *Client) (release func()) {
	for range cap(c.group.slots) {
		c.group.slots <- struct{}{}
	}
	release = sync.OnceFunc(func() {
		for range cap(c.group.slots) {
			<-c.group.slots
		}
	})
	t.Cleanup(release)
	return release
}

// WaitingCommits is how many calls wait for a group commit.
func WaitingCommits(c *Client) int { return int(c.group.waiting.Load()) }
