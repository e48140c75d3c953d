export * from './dataset';
export * from './mnist';
