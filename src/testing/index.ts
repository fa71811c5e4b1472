/**
 * warmpool/testing: a MockAgent for users' tests, an Agent that answers from interceptors.
 * See docs/architecture.md ("MockAgent") and the README.
 */
export { MockAgent, type MockInterception } from './mock-agent.js';
export {
  MockScope,
  type MockBody,
  type MockInterceptOptions,
  type MockMatcher,
  type MockReply,
  type MockReplyFunction,
  type MockRequest,
} from './interceptors.js';
export { MockNotMatchedError, MockPendingInterceptorsError } from '../errors.js';
