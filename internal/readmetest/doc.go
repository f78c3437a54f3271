// Package readmetest holds README.md to the code. Its tests run the walkthrough's shell blocks,
// as written, against `apitokens serve` started as `make run` starts it, and compare every answer
// with the status and excerpt the README shows under its command; check that every route a
// README code block names is in httpapi.Routes; and account for every other command of the
// README: run here, run by another test, or marked `# needs AWS`. It has no code of its own.
package readmetest
