package graphsim

// $filter on operatingSystem needs two numbers Graph reports or implies: the
// count of matching devices (@odata.count) and how many match before a skip
// token's position (which page this is). Scanning the whole tenant for every
// page would make a filtered walk quadratic, so the first filtered request
// counts devices per OS in blocks: 16 bytes per 4096 devices, a few
// milliseconds for a million.

const osBlock = 4096

func (s *Server) osCounts() [][osCount]int32 {
	s.osIndexOnce.Do(func() {
		n := s.cfg.Devices
		idx := make([][osCount]int32, (n+osBlock-1)/osBlock)
		for i := 0; i < n; i++ {
			idx[i/osBlock][s.osOf(i)]++
		}
		s.osIndex = idx
	})
	return s.osIndex
}

// matchesBefore counts the devices with operating system os among the
// devices 0..pos-1, removed ones included. The index covers the devices of
// Config.Devices; devices added later are few and counted one by one.
func (s *Server) matchesBefore(os osKind, pos int) int {
	if os >= osCount {
		return 0
	}
	pos = min(pos, s.state().devices)
	counts := s.osCounts()
	n := 0
	// Only whole blocks come from the index: the last one may be partial.
	block := min(pos, s.cfg.Devices) / osBlock
	for b := 0; b < block; b++ {
		n += int(counts[b][os])
	}
	for i := block * osBlock; i < pos; i++ {
		if s.osOf(i) == os {
			n++
		}
	}
	return n
}
