package api

// networkRoutes registers this area's routes when the backend implements them.
func (s *Server) networkRoutes() {}
