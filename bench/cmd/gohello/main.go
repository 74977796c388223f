// Command gohello is the smallest Go program: the benchmark times it as the
// start-up floor of any helper written in Go on the machine at hand.
package main

import "os"

func main() { os.Stdout.WriteString("hello\n") }
