package integrity

// CheckSignature exposes the checker to the differential fuzz test: the indexes of the secrets
// whose signature the header carries for body.
func CheckSignature(body []byte, header string, secrets []string) (int64, uint64) {
	return newChecker(Secrets{Current: secrets}).check(body, header)
}
