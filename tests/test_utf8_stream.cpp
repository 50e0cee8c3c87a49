// ctest-labels: infer
// Streaming decoded bytes (src/infer/utf8_stream.h): a multi-byte character split over tokens is
// printed whole, once complete; ASCII and invalid bytes pass at once; nothing is lost.
#include <gtest/gtest.h>

#include "infer/utf8_stream.h"

namespace t6::infer {
namespace {

TEST(Utf8Stream, AMultiByteCharacterIsHeldUntilComplete) {
  Utf8Stream stream;
  const std::string euro = "\xE2\x82\xAC", smile = "\xF0\x9F\x98\x80";
  EXPECT_EQ(stream.push("a\xE2"), "a");
  EXPECT_EQ(stream.push("\x82"), "");
  EXPECT_EQ(stream.push("\xAC" "b"), euro + "b");
  EXPECT_EQ(stream.push("\xF0\x9F"), "");
  EXPECT_EQ(stream.push("\x98"), "");
  EXPECT_EQ(stream.push("\x80"), smile);
  EXPECT_EQ(stream.push("\xC3"), "");
  EXPECT_EQ(stream.push("\xA9"), "\xC3\xA9");
  EXPECT_EQ(stream.finish(), "");
}

TEST(Utf8Stream, EverySplitOfATextGivesItBackWhole) {
  const std::string text = "na\xC3\xAFve \xE2\x82\xAC \xF0\x9F\x98\x80 ok";
  for (size_t cut1 = 0; cut1 <= text.size(); ++cut1)
    for (size_t cut2 = cut1; cut2 <= text.size(); ++cut2) {
      Utf8Stream stream;
      std::string out;
      for (const std::string& part : {text.substr(0, cut1), text.substr(cut1, cut2 - cut1), text.substr(cut2)}) {
        const std::string ready = stream.push(part);
        // Whatever is released ends on a character boundary: its last lead byte is complete.
        if (!ready.empty()) {
          EXPECT_NE(static_cast<unsigned char>(ready.back()) & 0xC0, 0xC0u);
        }
        out += ready;
      }
      out += stream.finish();
      EXPECT_EQ(out, text) << cut1 << " " << cut2;
    }
}

TEST(Utf8Stream, InvalidBytesPassThroughAndATruncatedEndIsFlushed) {
  Utf8Stream stream;
  EXPECT_EQ(stream.push("\xFF" "x\x80"), "\xFF" "x\x80");
  EXPECT_EQ(stream.push("\xE2\x82"), "");
  EXPECT_EQ(stream.finish(), "\xE2\x82");
}

}  // namespace
}  // namespace t6::infer
