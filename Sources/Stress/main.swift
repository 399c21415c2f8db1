import StressKit
import ConcurrentRmap
@main struct StressMain { static func main() throws {
  var o = StressOptions()
  o.threads = Int(CommandLine.arguments.dropFirst().first ?? "4")!
  o.duration = 5
  o.machine.frames = 2048
  o.keepGoing = true
  let r = try StressEngine.run(o) { s in print(s) }
  print(r.verdict, r.totalOps, r.opsPerS, r.violationsByKind, r.leaks.prefix(5))
  for v in r.violations.prefix(10) { print(v) }
  for (k, v) in r.ops.sorted(by: {$0.key < $1.key}) { print(k, v.count, v.idle, v.p50Ns) }
  print(r.events)
} }
