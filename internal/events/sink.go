package events

import "context"

// Sink delivers alerts somewhere an operator will see them. Each sink of
// an Emitter gets the alerts on its own goroutine, one at a time, so Send
// may be slow and may retry; it must return promptly once ctx is done.
type Sink interface {
	// Name identifies the sink in logs; it must not hold a secret.
	Name() string
	// Send delivers a, or returns why it could not, having given up.
	Send(ctx context.Context, a Alert) error
}

// sinkWorker feeds one sink from its bounded queue.
type sinkWorker struct {
	sink  Sink
	queue chan Alert
	done  chan struct{}
}

func (w *sinkWorker) run(e *Emitter) {
	defer close(w.done)
	for a := range w.queue {
		if err := w.sink.Send(e.ctx, a); err != nil {
			e.alertsFailed.Add(1)
			e.logger.Error("security alert not delivered", "sink", w.sink.Name(), "alert_id", a.ID, "rule", a.Rule, "source", a.Source, "err", err)
			continue
		}
		e.alertsDelivered.Add(1)
	}
}
