package api

// containerMoreRoutes registers this area's routes when the backend implements them.
func (s *Server) containerMoreRoutes() {
	s.containerSecRoutes()
}
