using Newsletter.Digests;

namespace Newsletter.Tests.Digests;

public sealed class SegmentStreamTests
{
    private static readonly ReadOnlyMemory<byte>[] Segments =
        [new byte[] { 1, 2, 3 }, Array.Empty<byte>(), new byte[] { 4 }, new byte[] { 5, 6, 7, 8, 9 }, Array.Empty<byte>()];

    private static readonly byte[] Whole = [1, 2, 3, 4, 5, 6, 7, 8, 9];

    [Fact]
    public void Reading_in_any_chunk_size_gives_the_concatenation()
    {
        for (var chunk = 1; chunk <= 10; chunk++)
        {
            using var stream = new SegmentStream(Segments);
            var result = new List<byte>();
            var buffer = new byte[chunk];
            int n;
            while ((n = stream.Read(buffer, 0, chunk)) > 0) result.AddRange(buffer.Take(n));
            Assert.Equal(Whole, result);
            Assert.Equal(Whole.Length, stream.Length);
        }
    }

    [Fact]
    public void Seeking_anywhere_then_reading_gives_the_rest()
    {
        for (var at = 0; at <= Whole.Length; at++)
        {
            using var stream = new SegmentStream(Segments) { Position = at };
            var rest = new byte[20];
            var n = stream.Read(rest, 0, rest.Length);
            Assert.Equal(Whole[at..], rest[..n]);
        }
    }
}
