package observe

// Notify adds fn to what hears of every call record once it is stored
// (e.g. remote syslog). fn runs on the caller's goroutine at the end of a
// call, so it must not block: queue and return.
func (r *Recorder) Notify(fn func(CDR)) {
	for {
		old := r.sinks.Load()
		var next []func(CDR)
		if old != nil {
			next = append(next, *old...)
		}
		next = append(next, fn)
		if r.sinks.CompareAndSwap(old, &next) {
			return
		}
	}
}

func (r *Recorder) notify(c *CDR) {
	if fns := r.sinks.Load(); fns != nil {
		for _, fn := range *fns {
			fn(*c)
		}
	}
}
