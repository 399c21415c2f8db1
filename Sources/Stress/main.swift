import StressKit
@main struct StressMain { static func main() { } }
