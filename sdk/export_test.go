package sdk

// ForgetSchedule removes the declaration of schedule name (Schedule), so
// that a test that declared one leaves the other tests' executors alone.
func ForgetSchedule(name string) {
	declared.Lock()
	defer declared.Unlock()
	for i, d := range declared.list {
		if d.name == name {
			declared.list = append(declared.list[:i], declared.list[i+1:]...)
			return
		}
	}
}
