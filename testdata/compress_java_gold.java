import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.utils.internals.BufferSupplier;
import org.apache.kafka.common.utils.internals.ByteBufferOutputStream;
import java.io.*;
import java.nio.ByteBuffer;
import java.nio.file.*;
import java.util.Arrays;

class Gold {
    static void gen(String path, Compression c, byte magic, byte[] plain) throws Exception {
        ByteBufferOutputStream bb = new ByteBufferOutputStream(1024);
        try (OutputStream os = c.wrapForOutput(bb, magic)) {
            os.write(plain);
        }
        ByteBuffer buf = bb.buffer();
        buf.flip();
        byte[] out = new byte[buf.remaining()];
        buf.get(out);
        Files.write(Paths.get(path), out);
        System.out.println("wrote " + path + " " + out.length + " bytes");
    }

    public static void main(String[] a) throws Exception {
        byte[] plain = Files.readAllBytes(Paths.get(a[1]));
        if (a[0].equals("gen")) {
            String d = a[2];
            gen(d + "/compress_java_gzip.bin", Compression.gzip().build(), (byte) 2, plain);
            gen(d + "/compress_java_snappy.bin", Compression.snappy().build(), (byte) 2, plain);
            gen(d + "/compress_java_lz4.bin", Compression.lz4().build(), (byte) 2, plain);
            gen(d + "/compress_java_lz4legacy.bin", Compression.lz4().build(), (byte) 0, plain);
            gen(d + "/compress_java_zstd.bin", Compression.zstd().build(), (byte) 2, plain);
            return;
        }
        // check: files named kpax_<codec>_<magic>_<anything>.bin
        int bad = 0;
        for (int i = 2; i < a.length; i++) {
            String name = Paths.get(a[i]).getFileName().toString();
            String[] parts = name.split("_");
            String codec = parts[1];
            byte magic = Byte.parseByte(parts[2]);
            byte[] comp = Files.readAllBytes(Paths.get(a[i]));
            String result;
            try (InputStream is = Compression.of(codec).build().wrapForInput(ByteBuffer.wrap(comp), magic, BufferSupplier.create())) {
                byte[] got = is.readAllBytes();
                result = Arrays.equals(got, plain) ? "OK" : ("MISMATCH " + got.length + " bytes");
            } catch (Exception e) {
                result = "ERROR " + e;
            }
            if (!result.equals("OK")) bad++;
            System.out.println(name + ": " + result);
        }
        System.out.println(bad == 0 ? "all OK" : bad + " FAILED");
    }
}
