// Package show writes what a daemon answers for the person or the script that asked: a
// command's run as it happens (Run: the progress line, streamed or gathered output, JSON,
// --outdir files, the summary, and what Ctrl-C does to it) and the reports of ping, info,
// time, put, get, status and last.
//
// The console's REPL and the one-shot commands both show their answers through it; the
// formatting itself is package render's.
package show
