package sshd

import (
	"sync"
	"time"
)

// policy is the password penalty model, after OpenSSH's
// PerSourcePenalties but kept per (source, user) and per source: each
// password attempt that is admitted charges both accounts penalty at the
// moment it is made (not when its connection ends, so parallel
// connections share one budget); the charge drains in real time; while
// either account owes more than its threshold, attempts are refused
// without being checked and charge nothing, so a flood cannot push the
// owner's recovery further out. An account never owes more than
// threshold+penalty: the right password is checked again at most
// penalty after the last guess.
type policy struct {
	penalty         time.Duration // charged per checked password
	userThreshold   time.Duration // (source, user): 4 quick guesses
	sourceThreshold time.Duration // source, any user name: 13 quick attempts
	delay           time.Duration // after each refusal, to slow a single client
}

var defaultPolicy = policy{
	penalty:         5 * time.Second,
	userThreshold:   15 * time.Second,
	sourceThreshold: 60 * time.Second,
	delay:           250 * time.Millisecond,
}

// ledger keeps what each (source, user) and each source owes, as the
// time its debt is paid off.
type ledger struct {
	policy
	now func() time.Time

	mu   sync.Mutex
	owed map[penaltyKey]time.Time // user "" is the source's own account
}

type penaltyKey struct{ source, user string }

func newLedger(p policy, now func() time.Time) *ledger {
	return &ledger{policy: p, now: now, owed: map[penaltyKey]time.Time{}}
}

// reserve charges one attempt of user from source, if both of its
// accounts are within their thresholds, and says whether the attempt may
// be checked. Charging before the check is what keeps parallel
// connections from all slipping in before the first failure is counted.
func (l *ledger) reserve(source, user string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	src, usr := penaltyKey{source, ""}, penaltyKey{source, user}
	if l.left(src, now) > l.sourceThreshold || l.left(usr, now) > l.userThreshold {
		return false
	}
	for _, k := range []penaltyKey{src, usr} {
		l.owed[k] = now.Add(l.left(k, now) + l.penalty)
	}
	return true
}

// refund takes back a reservation whose password was right: a login
// costs nothing.
func (l *ledger) refund(source, user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range []penaltyKey{{source, ""}, {source, user}} {
		if end, ok := l.owed[k]; ok {
			l.owed[k] = end.Add(-l.penalty)
		}
	}
}

// left is what k owes at now; a paid-off account is forgotten, so the
// map holds only sources that failed in the last threshold+penalty.
func (l *ledger) left(k penaltyKey, now time.Time) time.Duration {
	end, ok := l.owed[k]
	if !ok {
		return 0
	}
	if d := end.Sub(now); d > 0 {
		return d
	}
	delete(l.owed, k)
	return 0
}

// recovery is the longest the right password can be refused after the
// last guess from its source: one penalty.
func (l *ledger) recovery() time.Duration { return l.penalty }
