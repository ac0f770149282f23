package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/runagent/runagent/internal/server"
	"github.com/runagent/runagent/internal/store/postgres"
)

// maxClockSkew is the most a node's clock may differ from the database's
// before doctor objects: nodes compare times they wrote themselves with
// times other nodes wrote (heartbeats, key expiry, rate-limit windows,
// the audit trail's order), so seconds of skew make a live node look
// dead or an expired key valid.
const maxClockSkew = 2 * time.Second

// checkStore checks the PostgreSQL store at url: reachable, at a schema
// this binary can serve, with a clock close to this host's. Its details
// never show the URL's password.
func checkStore(ctx context.Context, url string) doctorCheck {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := postgres.Check(ctx, url)
	if err != nil {
		target := server.RedactURL(url)
		if st != nil {
			target = st.Target
		}
		return doctorCheck{Detail: fmt.Sprintf("%v (fix: start PostgreSQL or make %s reachable from this host, and check the store URL's user, password and database in --store-file or $RUNAGENT_STORE_URL)", err, target)}
	}
	detail := fmt.Sprintf("%s, PostgreSQL %s, answered in %s", st.Target, st.ServerVersion, st.RoundTrip.Round(time.Microsecond))
	ok := true
	switch {
	case st.SchemaVersion > st.KnownVersion:
		ok = false
		detail += fmt.Sprintf("; schema version %d is newer than this binary's %d: a newer runagent migrated it (fix: upgrade runagent on this node to the version the other nodes run)", st.SchemaVersion, st.KnownVersion)
	case st.SchemaVersion == 0:
		detail += fmt.Sprintf("; empty: serve creates the schema (version %d) at its first start", st.KnownVersion)
	case st.SchemaVersion < st.KnownVersion:
		detail += fmt.Sprintf("; schema version %d, this binary's is %d: serve migrates it at start (back the database up first; nodes still on the older version refuse it afterwards)", st.SchemaVersion, st.KnownVersion)
	default:
		detail += fmt.Sprintf("; schema version %d, as this binary expects", st.SchemaVersion)
	}
	skew := st.ClockSkew.Round(time.Millisecond)
	if skew.Abs() > maxClockSkew {
		ok = false
		detail += fmt.Sprintf("; clock skew %s against the database, more than %s (fix: synchronise the clocks of the nodes and the database with NTP: systemd-timesyncd or chrony)", skew, maxClockSkew)
	} else {
		detail += fmt.Sprintf("; clock skew %s", skew)
	}
	return doctorCheck{OK: ok, Detail: detail}
}

// checkRedis checks that the Redis at url answers. Its details never
// show the URL's password.
func checkRedis(ctx context.Context, url string) doctorCheck {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return doctorCheck{Detail: "the Redis URL does not parse (fix: redis://[user:password@]host:port/db, or rediss:// for TLS, in --redis-url-file or $RUNAGENT_REDIS_URL)"}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c := redis.NewClient(opt)
	defer c.Close()
	start := time.Now()
	if err := c.Ping(ctx).Err(); err != nil {
		return doctorCheck{Detail: fmt.Sprintf("Redis at %s does not answer: %s (fix: start Redis or make it reachable from this host, and check the URL's password and database)", opt.Addr, redactSecret(err.Error(), opt.Password))}
	}
	return doctorCheck{OK: true, Detail: fmt.Sprintf("Redis at %s answered in %s", opt.Addr, time.Since(start).Round(time.Microsecond))}
}

// redactSecret replaces secret in s.
func redactSecret(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "xxxxx")
}
