package api

// containerMoreRoutes registers this area's routes when the backend implements them.
func (s *Server) containerMoreRoutes() {
	s.containerCtrRoutes() // containers_ctr.go: pause, unpause, top, stats
	s.containerSecRoutes()
}
