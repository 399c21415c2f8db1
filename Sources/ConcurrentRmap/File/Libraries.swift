/// Shared libraries: every new process image (process creation, exec) maps
/// each library inode, text and data as one private file mapping of the
/// whole file (a real ld.so makes a mapping per segment; one VMA keeps the
/// model's VMA budget). Every process then maps the same page cache pages,
/// so a library page's walk visits one VMA per process: the many-mappers
/// case of the file rmap.
extension Kernel {
    /// Maps inodes 1...libraries into new published `mm` (not yet in the
    /// process table). A library that finds no VMA slot is left out: the
    /// process runs without it, counted as `mapLibraryFailed`.
    func mapLibraries(_ mm: UInt32, _ cpu: CPU) {
        for i in 0..<files.libraries {
            let v = mmapFile(mm, inode: UInt32(1 + i), pgoff: 0, pages: files.maxPages, shared: false, cpu)
            cpu.pointee.count(v != 0 ? .mapLibrary : .mapLibraryFailed)
        }
    }
}
