// Command checker independently verifies a live Custos custody ledger.
//
// The ledger is an RFC 6962 transparency log published as a C2SP signed
// checkpoint, C2SP tlog-tiles hash tiles and entry bundles, plus JSON proof
// endpoints. Every check below recomputes the answer with Go's
// golang.org/x/mod/sumdb/tlog and note packages, which share no code with
// the Python server, so a pass means two independent implementations agree.
//
// It exits 0 and prints an "ok:" summary only if every check holds; otherwise
// it prints one line naming the failed check and exits 1.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const (
	tileHeight = 8               // C2SP tlog-tiles: 256 hashes / entries per full tile
	tileWidth  = 1 << tileHeight // entries per full tile
	spreadMax  = 300             // check every index/size up to this tree size...
	spreadN    = 200             // ...otherwise about this many, spread evenly
	maxBody    = 64 << 20        // refuse absurdly large responses
)

var (
	baseURL = flag.String("url", "", "base URL of the Custos server, e.g. http://127.0.0.1:8080")
	vkeyArg = flag.String("vkey", "", "pinned verifier key of the log (name+hash+base64)")
	token   = flag.String("token", "", "bearer token for the entry bundle endpoints")
	oldCP   = flag.String("old-checkpoint", "", "optional file holding an earlier checkpoint note")

	client = &http.Client{Timeout: 30 * time.Second}
)

// fail prints one line naming what failed and exits 1.
func fail(format string, args ...interface{}) {
	msg := fmt.Sprintf(format, args...)
	msg = strings.Join(strings.Fields(msg), " ") // keep it on one line
	fmt.Println("FAIL: " + msg)
	os.Exit(1)
}

// get fetches base+path and returns status, media type and body.
func get(path string, auth bool) (int, string, []byte, error) {
	req, err := http.NewRequest("GET", strings.TrimRight(*baseURL, "/")+path, nil)
	if err != nil {
		return 0, "", nil, err
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+*token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, "", nil, err
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return resp.StatusCode, mt, body, nil
}

// mustGet fetches path and fails unless the server answers 200.
func mustGet(what, path string, auth bool) []byte {
	code, _, body, err := get(path, auth)
	if err != nil {
		fail("%s: GET %s: %v", what, path, err)
	}
	if code != http.StatusOK {
		fail("%s: GET %s: HTTP %d: %.200s", what, path, code, body)
	}
	return body
}

// checkpoint is a parsed C2SP tlog-checkpoint.
type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
}

// openCheckpoint verifies a signed note with the pinned key and parses its
// text as a C2SP tlog-checkpoint: "origin\nsize\nbase64(root)\n[extensions]".
func openCheckpoint(what string, msg []byte, v note.Verifier) checkpoint {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		fail("%s: signature does not verify with the pinned key: %v", what, err)
	}
	lines := strings.Split(n.Text, "\n") // Text ends in "\n", so the last element is ""
	if len(lines) < 4 {
		fail("%s: body has fewer than 3 lines", what)
	}
	var cp checkpoint
	cp.origin = lines[0]
	if cp.origin != v.Name() {
		fail("%s: origin %q is not the key name %q", what, cp.origin, v.Name())
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		fail("%s: bad tree size line %q", what, lines[1])
	}
	cp.size = size
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		fail("%s: bad root hash line %q", what, lines[2])
	}
	copy(cp.root[:], root)
	return cp
}

// tilePath maps a Go tlog tile to its C2SP path: Go names hash tiles
// tile/8/L/N and data tiles tile/8/data/N; C2SP uses tile/L/N and
// tile/entries/N. The N encoding (x001/x234/067) and ".p/W" suffix agree.
func tilePath(t tlog.Tile) string {
	p := strings.TrimPrefix(t.Path(), fmt.Sprintf("tile/%d/", tileHeight))
	p = strings.Replace(p, "data/", "entries/", 1)
	return "/v1/log/tile/" + p
}

// fetchTile fetches a tile, falling back to the full tile when a partial
// one is gone (C2SP allows deleting partial tiles once the full one exists).
// It returns the raw body of whichever tile was served and whether it was full.
func fetchTile(what string, t tlog.Tile, auth bool) (body []byte, full bool) {
	code, _, body, err := get(tilePath(t), auth)
	if err == nil && code == http.StatusNotFound && t.W < tileWidth {
		t.W = tileWidth
		code, _, body, err = get(tilePath(t), auth)
		full = true
	}
	if err != nil {
		fail("%s: GET %s: %v", what, tilePath(t), err)
	}
	if code != http.StatusOK {
		fail("%s: GET %s: HTTP %d: %.200s", what, tilePath(t), code, body)
	}
	return body, full || t.W == tileWidth
}

// httpTiles is a tlog.TileReader over the server's hash tile endpoints.
// Tiles are cached; that is safe because TileHashReader re-checks them
// against the checkpoint root on every read, and step 3b compares every
// one with the tile rebuilt from the entries.
type httpTiles struct {
	cache map[tlog.Tile][]byte
}

func (r *httpTiles) Height() int { return tileHeight }

func (r *httpTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		if data, ok := r.cache[t]; ok {
			out[i] = data
			continue
		}
		data, full := fetchTile("hash tile", t, false)
		want := t.W * tlog.HashSize
		if full {
			// A full tile was served for a partial request: use its prefix.
			if len(data) != tileWidth*tlog.HashSize {
				return nil, fmt.Errorf("tile %s: %d bytes, want %d", tilePath(t), len(data), tileWidth*tlog.HashSize)
			}
			data = data[:want]
		}
		if len(data) != want {
			return nil, fmt.Errorf("tile %s: %d bytes, want %d", tilePath(t), len(data), want)
		}
		r.cache[t] = data
		out[i] = data
	}
	return out, nil
}

func (r *httpTiles) SaveTiles([]tlog.Tile, [][]byte) {}

// allTiles lists the hash tiles of a tree of the given size: every full
// tile, plus the partial tile at the right edge of each level.
func allTiles(size int64) []tlog.Tile {
	var out []tlog.Tile
	for L := 0; size>>uint(tileHeight*L) > 0; L++ {
		hashes := size >> uint(tileHeight*L) // stored hashes at this tile level
		for n := int64(0); n*tileWidth < hashes; n++ {
			w := hashes - n*tileWidth
			if w > tileWidth {
				w = tileWidth
			}
			out = append(out, tlog.Tile{H: tileHeight, L: L, N: n, W: int(w)})
		}
	}
	return out
}

// parseBundle splits a C2SP entry bundle (uint16 big-endian length + bytes,
// repeated) into its entries.
func parseBundle(b []byte) ([][]byte, error) {
	var entries [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, fmt.Errorf("truncated length prefix")
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return nil, fmt.Errorf("entry %d truncated", len(entries))
		}
		entries = append(entries, b[2:2+n])
		b = b[2+n:]
	}
	return entries, nil
}

// spread returns about n evenly spread values in [lo, hi], always including
// both ends; every value if the range is small.
func spread(lo, hi int64) []int64 {
	var out []int64
	if hi-lo+1 <= spreadMax {
		for x := lo; x <= hi; x++ {
			out = append(out, x)
		}
		return out
	}
	for k := int64(0); k < spreadN; k++ {
		x := lo + k*(hi-lo)/(spreadN-1)
		if len(out) == 0 || out[len(out)-1] != x {
			out = append(out, x)
		}
	}
	return out
}

// proofJSON is the shape of both proof endpoints' answers.
type proofJSON struct {
	Index    *int64   `json:"index"`
	TreeSize *int64   `json:"tree_size"`
	From     *int64   `json:"from"`
	To       *int64   `json:"to"`
	Hashes   []string `json:"hashes"`
}

// fetchProof GETs a proof endpoint, checks the echoed parameters, and
// decodes the base64 hashes.
func fetchProof(what, path string, want map[string]int64) []tlog.Hash {
	var p proofJSON
	if err := json.Unmarshal(mustGet(what, path, false), &p); err != nil {
		fail("%s: %s: bad JSON: %v", what, path, err)
	}
	got := map[string]*int64{"index": p.Index, "tree_size": p.TreeSize, "from": p.From, "to": p.To}
	for k, v := range want {
		if got[k] == nil || *got[k] != v {
			fail("%s: %s: field %q is not %d", what, path, k, v)
		}
	}
	if p.Hashes == nil {
		fail("%s: %s: no \"hashes\" array", what, path)
	}
	hashes := make([]tlog.Hash, len(p.Hashes))
	for i, s := range p.Hashes {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != tlog.HashSize {
			fail("%s: %s: hash %d is not base64 of 32 bytes", what, path, i)
		}
		copy(hashes[i][:], b)
	}
	return hashes
}

// sameHashes reports whether two proofs are equal hash by hash.
func sameHashes(a, b []tlog.Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// expectProblem checks that path answers HTTP 400 application/problem+json.
func expectProblem(what, path string) {
	code, mt, body, err := get(path, false)
	if err != nil {
		fail("%s: GET %s: %v", what, path, err)
	}
	if code != http.StatusBadRequest {
		fail("%s: GET %s: HTTP %d, want 400", what, path, code)
	}
	if mt != "application/problem+json" {
		fail("%s: GET %s: content type %q, want application/problem+json", what, path, mt)
	}
	var obj map[string]interface{}
	if err := json.Unmarshal(body, &obj); err != nil {
		fail("%s: GET %s: problem body is not a JSON object: %v", what, path, err)
	}
}

func main() {
	flag.Parse()
	if *baseURL == "" || *vkeyArg == "" {
		fmt.Fprintln(os.Stderr, "usage: checker -url URL -vkey KEY [-token T] [-old-checkpoint FILE]")
		os.Exit(2)
	}
	verifier, err := note.NewVerifier(*vkeyArg)
	if err != nil {
		fail("pinned -vkey is not a valid verifier key: %v", err)
	}

	// 0. The key endpoint must list the pinned key.
	keys := mustGet("key", "/v1/log/key", false)
	listed := false
	for _, line := range strings.Split(string(keys), "\n") {
		listed = listed || strings.TrimSpace(line) == *vkeyArg
	}
	if !listed {
		fail("key: /v1/log/key does not list the pinned verifier key")
	}

	// 1. Signed checkpoint.
	cp := openCheckpoint("checkpoint", mustGet("checkpoint", "/v1/log/checkpoint", false), verifier)
	size, root := cp.size, cp.root

	// 7 (done early so an empty log still gets it). Bad input answers 400 problem+json.
	expectProblem("bad inclusion request", fmt.Sprintf("/v1/log/proofs/inclusion?index=%d&tree_size=%d", size, size))
	expectProblem("bad consistency request", fmt.Sprintf("/v1/log/proofs/consistency?from=%d&to=%d", size+1, size))

	if size == 0 {
		// RFC 6962: the empty tree's root is SHA-256 of the empty string.
		if root != tlog.Hash(sha256.Sum256(nil)) {
			fail("checkpoint: size 0 but root is not SHA-256(\"\")")
		}
		checkOld(cp, verifier)
		fmt.Println("ok: checkpoint size=0, 0 inclusion proofs, 0 consistency proofs, 0 tiles, 0 entries checked")
		return
	}

	// 2. Hash tiles: the tree hash recomputed from tiles must be the root.
	tiles := &httpTiles{cache: make(map[tlog.Tile][]byte)}
	hr := tlog.TileHashReader(tlog.Tree{N: size, Hash: root}, tiles)
	th, err := tlog.TreeHash(size, hr)
	if err != nil {
		fail("tiles: %v", err)
	}
	if th != root {
		fail("tiles: tree hash %s from tiles is not checkpoint root %s", th, root)
	}

	// 3. Entry bundles. Rebuild the tree locally from the entries: it must
	// reproduce the checkpoint root.
	var local []tlog.Hash // our own stored hashes (tlog.StoredHashes layout)
	localHR := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x < 0 || x >= int64(len(local)) {
				return nil, fmt.Errorf("stored hash %d not computed", x)
			}
			out[i] = local[x]
		}
		return out, nil
	})
	leaf := make([]tlog.Hash, 0, size) // RFC 6962 leaf hash of each entry
	for n := int64(0); n*tileWidth < size; n++ {
		w := size - n*tileWidth
		if w > tileWidth {
			w = tileWidth
		}
		t := tlog.Tile{H: tileHeight, L: -1, N: n, W: int(w)}
		body, full := fetchTile("entry bundle", t, true)
		entries, err := parseBundle(body)
		if err != nil {
			fail("entry bundle %s: %v", tilePath(t), err)
		}
		// A full bundle stood in for a gone partial one: keep its prefix.
		if full && len(entries) == tileWidth {
			entries = entries[:w]
		}
		if len(entries) != int(w) {
			fail("entry bundle %s: %d entries, want %d", tilePath(t), len(entries), w)
		}
		for _, e := range entries {
			hs, err := tlog.StoredHashes(int64(len(leaf)), e, localHR)
			if err != nil {
				fail("entries: rebuilding the tree: %v", err)
			}
			local = append(local, hs...)
			leaf = append(leaf, tlog.RecordHash(e))
		}
	}
	if lr, err := tlog.TreeHash(size, localHR); err != nil {
		fail("entries: rebuilding the tree: %v", err)
	} else if lr != root {
		// Name the first entry whose leaf hash the tiles disagree with.
		for i := range leaf {
			if h, err := hr.ReadHashes([]int64{tlog.StoredHashIndex(0, int64(i))}); err == nil && h[0] != leaf[i] {
				fail("entries: tree rebuilt from the entries lacks the checkpoint root; entry %d's leaf hash is not the stored hash", i)
			}
		}
		fail("entries: the tree rebuilt from the %d entries does not have the checkpoint root", size)
	}

	// 3b. Every hash tile of the tree must equal the tile recomputed from
	// the entries. TileHashReader alone is not enough: the x/mod it ships
	// with (Debian's 0.7.0) can skip authenticating some full tiles
	// (CVE-2026-56865, fixed in x/mod v0.40.0).
	for _, t := range allTiles(size) {
		got, err := tiles.ReadTiles([]tlog.Tile{t})
		if err != nil {
			fail("tiles: %v", err)
		}
		want, err := tlog.ReadTileData(t, localHR)
		if err != nil {
			fail("tiles: recomputing %s: %v", tilePath(t), err)
		}
		if !bytes.Equal(got[0], want) {
			fail("tiles: %s differs from the tile recomputed from the entries", tilePath(t))
		}
	}

	// 3c. Each entry's leaf hash must be the stored hash that the
	// TileHashReader serves for its index.
	for lo := int64(0); lo < size; lo += tileWidth {
		var idx []int64
		for i := lo; i < size && i < lo+tileWidth; i++ {
			idx = append(idx, tlog.StoredHashIndex(0, i))
		}
		stored, err := hr.ReadHashes(idx)
		if err != nil {
			fail("entries: reading stored hashes at %d: %v", lo, err)
		}
		for j, h := range stored {
			if leaf[lo+int64(j)] != h {
				fail("entry %d: leaf hash %s is not the stored hash %s", lo+int64(j), leaf[lo+int64(j)], h)
			}
		}
	}

	// 4. Inclusion proofs at the checkpoint size: valid, and equal to ours.
	incl := spread(0, size-1)
	for _, i := range incl {
		path := fmt.Sprintf("/v1/log/proofs/inclusion?index=%d&tree_size=%d", i, size)
		proof := tlog.RecordProof(fetchProof("inclusion proof", path, map[string]int64{"index": i, "tree_size": size}))
		if err := tlog.CheckRecord(proof, size, root, i, leaf[i]); err != nil {
			fail("inclusion proof index=%d tree_size=%d: %v", i, size, err)
		}
		ours, err := tlog.ProveRecord(size, i, hr)
		if err != nil {
			fail("inclusion proof index=%d: computing our own: %v", i, err)
		}
		if !sameHashes(proof, ours) {
			fail("inclusion proof index=%d tree_size=%d differs from tlog.ProveRecord", i, size)
		}
	}

	// 5. Consistency proofs from spread sizes m to the checkpoint size.
	cons := spread(1, size)
	for _, m := range cons {
		path := fmt.Sprintf("/v1/log/proofs/consistency?from=%d&to=%d", m, size)
		proof := tlog.TreeProof(fetchProof("consistency proof", path, map[string]int64{"from": m, "to": size}))
		oldRoot, err := tlog.TreeHash(m, hr)
		if err != nil {
			fail("consistency proof from=%d: computing old root: %v", m, err)
		}
		if err := tlog.CheckTree(proof, size, root, m, oldRoot); err != nil {
			fail("consistency proof from=%d to=%d: %v", m, size, err)
		}
		ours, err := tlog.ProveTree(size, m, hr)
		if err != nil {
			fail("consistency proof from=%d: computing our own: %v", m, err)
		}
		if !sameHashes(proof, ours) {
			fail("consistency proof from=%d to=%d differs from tlog.ProveTree", m, size)
		}
	}

	// 6. Optional earlier checkpoint: the current tree must extend it.
	nOld := checkOld(cp, verifier)

	fmt.Printf("ok: checkpoint size=%d, %d inclusion proofs, %d consistency proofs, %d tiles, %d entries checked\n",
		size, len(incl), len(cons)+nOld, len(tiles.cache), len(leaf))
}

// checkOld checks -old-checkpoint, if given, against the current checkpoint
// with the server's consistency proof. It returns the number of proofs checked.
func checkOld(cur checkpoint, v note.Verifier) int {
	if *oldCP == "" {
		return 0
	}
	msg, err := os.ReadFile(*oldCP)
	if err != nil {
		fail("old checkpoint: %v", err)
	}
	old := openCheckpoint("old checkpoint", msg, v)
	switch {
	case old.size > cur.size:
		fail("old checkpoint: size %d is larger than current size %d", old.size, cur.size)
	case old.size == 0:
		return 0 // the empty tree is a prefix of every tree
	case old.size == cur.size:
		if old.root != cur.root {
			fail("old checkpoint: same size %d but a different root (split view)", old.size)
		}
		return 0
	}
	path := fmt.Sprintf("/v1/log/proofs/consistency?from=%d&to=%d", old.size, cur.size)
	proof := tlog.TreeProof(fetchProof("old checkpoint consistency proof", path, map[string]int64{"from": old.size, "to": cur.size}))
	if err := tlog.CheckTree(proof, cur.size, cur.root, old.size, old.root); err != nil {
		fail("old checkpoint: consistency proof from=%d to=%d: %v", old.size, cur.size, err)
	}
	return 1
}
