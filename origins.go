package wsgate

// SetAllowedOrigins replaces Config.AllowedOrigins while the Server runs,
// as "wsgate serve" does on SIGHUP. Handshakes that start afterwards see
// the new list; open connections are not checked again.
func (s *Server) SetAllowedOrigins(origins []string) {
	o := append([]string(nil), origins...)
	s.origins.Store(&o)
}
